//! A component of its own world, `example:shapes`, not wasmpool's task
//! world: `wasmpool run shapes.wasm --invoke NAME` calls its functions with
//! JSON arguments converted to their WIT types.

wit_bindgen::generate!({ path: "wit", world: "shapes" });

use exports::example::shapes::geometry::{Guest as Geometry, Point, Shape, Style, Unit};

struct Shapes;

impl Guest for Shapes {
    fn describe(name: String, sides: u8) -> String {
        format!("a {name} has {sides} sides")
    }
}

impl Geometry for Shapes {
    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(radius) => std::f64::consts::PI * radius * radius,
            Shape::Rect((width, height)) => width * height,
            Shape::Dot => 0.0,
        }
    }

    fn centroid(points: Vec<Point>) -> Option<Point> {
        if points.is_empty() {
            return None;
        }
        let n = points.len() as f64;
        Some(Point {
            x: points.iter().map(|p| p.x).sum::<f64>() / n,
            y: points.iter().map(|p| p.y).sum::<f64>() / n,
        })
    }

    fn parse_unit(text: String) -> Result<Unit, String> {
        match text.as_str() {
            "mm" => Ok(Unit::Mm),
            "cm" => Ok(Unit::Cm),
            "m" => Ok(Unit::M),
            other => Err(format!("unknown unit `{other}`")),
        }
    }

    fn to_mm(p: Point, in_unit: Unit) -> Point {
        let factor = match in_unit {
            Unit::Mm => 1.0,
            Unit::Cm => 10.0,
            Unit::M => 1000.0,
        };
        Point {
            x: p.x * factor,
            y: p.y * factor,
        }
    }

    fn styles(s: Style) -> Vec<String> {
        let mut names = Vec::new();
        if s.contains(Style::BOLD) {
            names.push("bold".to_string());
        }
        if s.contains(Style::DASHED) {
            names.push("dashed".to_string());
        }
        names
    }
}

export!(Shapes);
