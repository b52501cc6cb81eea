//! JSON to component-model values and back, for typed calls of any
//! exported function (`--invoke`).
//!
//! The mapping: integers and floats are JSON numbers (range-checked), `char`
//! a one-character string, `string` a string, `list`, `tuple` and
//! fixed-length lists arrays, `record` an object keyed by field name,
//! `option` `null` or the value, `result` `{"ok": v}` or `{"err": v}`,
//! `enum` the case name, `variant` `{"case": payload}` (or the case name for
//! a case without payload), `flags` an array of the names set, `map` an array
//! of `[key, value]` pairs.

use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

/// An argument that does not fit its parameter.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// Where in the value: `.field`, `[2]`, ... (empty at the top).
    path: String,
    expected: String,
    found: String,
}

impl Mismatch {
    fn new(ty: &Type, found: &Value) -> Mismatch {
        Mismatch {
            path: String::new(),
            expected: describe(ty),
            found: brief(found),
        }
    }

    fn at(mut self, step: &str) -> Mismatch {
        self.path.insert_str(0, step);
        self
    }
}

/// The arguments of a call, from a JSON array with one element per
/// parameter; the error names the parameter and the type it expects.
pub(crate) fn arguments(input: &[u8], params: &[(String, Type)]) -> Result<Vec<Val>, String> {
    let value: Value =
        serde_json::from_slice(input).map_err(|error| format!("the input is not JSON: {error}"))?;
    let signature = || {
        let list: Vec<String> = params
            .iter()
            .map(|(name, ty)| format!("{name}: {}", describe(ty)))
            .collect();
        list.join(", ")
    };
    let Value::Array(values) = value else {
        return Err(format!(
            "the input must be a JSON array of the arguments ({}), got {}",
            signature(),
            brief(&value)
        ));
    };
    if values.len() != params.len() {
        return Err(format!(
            "the function takes {} arguments ({}), the input has {}",
            params.len(),
            signature(),
            values.len()
        ));
    }
    values
        .iter()
        .zip(params)
        .map(|(value, (name, ty))| {
            from_json(value, ty).map_err(|mismatch| {
                if mismatch.path.is_empty() {
                    format!(
                        "parameter `{name}` expects {}, got {}",
                        mismatch.expected, mismatch.found
                    )
                } else {
                    format!(
                        "parameter `{name}` ({}): expected {} at {}, got {}",
                        describe(ty),
                        mismatch.expected,
                        mismatch.path,
                        mismatch.found
                    )
                }
            })
        })
        .collect()
}

/// The value of type `ty` that `value` stands for.
pub(crate) fn from_json(value: &Value, ty: &Type) -> Result<Val, Mismatch> {
    let mismatch = || Mismatch::new(ty, value);
    Ok(match ty {
        Type::Bool => Val::Bool(value.as_bool().ok_or_else(mismatch)?),
        Type::S8 => Val::S8(signed(value).ok_or_else(mismatch)?),
        Type::S16 => Val::S16(signed(value).ok_or_else(mismatch)?),
        Type::S32 => Val::S32(signed(value).ok_or_else(mismatch)?),
        Type::S64 => Val::S64(signed(value).ok_or_else(mismatch)?),
        Type::U8 => Val::U8(unsigned(value).ok_or_else(mismatch)?),
        Type::U16 => Val::U16(unsigned(value).ok_or_else(mismatch)?),
        Type::U32 => Val::U32(unsigned(value).ok_or_else(mismatch)?),
        Type::U64 => Val::U64(unsigned(value).ok_or_else(mismatch)?),
        Type::Float32 => Val::Float32(float32(value).ok_or_else(mismatch)?),
        Type::Float64 => Val::Float64(value.as_f64().ok_or_else(mismatch)?),
        Type::Char => {
            let text = value.as_str().ok_or_else(mismatch)?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch()),
            }
        }
        Type::String => Val::String(value.as_str().ok_or_else(mismatch)?.to_string()),
        Type::List(list) => Val::List(elements(value, &list.ty(), None).ok_or_else(mismatch)??),
        Type::FixedLengthList(list) => Val::FixedLengthList(
            elements(value, &list.ty(), Some(list.len() as usize)).ok_or_else(mismatch)??,
        ),
        Type::Tuple(tuple) => {
            let items = value.as_array().ok_or_else(mismatch)?;
            if items.len() != tuple.types().len() {
                return Err(mismatch());
            }
            let vals = items
                .iter()
                .zip(tuple.types())
                .enumerate()
                .map(|(i, (item, ty))| from_json(item, &ty).map_err(|m| m.at(&format!("[{i}]"))))
                .collect::<Result<_, _>>()?;
            Val::Tuple(vals)
        }
        Type::Record(record) => {
            let object = value.as_object().ok_or_else(mismatch)?;
            if let Some(unknown) = object
                .keys()
                .find(|key| !record.fields().any(|field| field.name == key.as_str()))
            {
                return Err(Mismatch {
                    path: String::new(),
                    expected: describe(ty),
                    found: format!("an object with the unknown field `{unknown}`"),
                });
            }
            let fields = record
                .fields()
                .map(|field| {
                    let item = object.get(field.name).unwrap_or(&Value::Null);
                    // A missing field is `null`: fine for an option only.
                    from_json(item, &field.ty)
                        .map(|val| (field.name.to_string(), val))
                        .map_err(|m| m.at(&format!(".{}", field.name)))
                })
                .collect::<Result<_, _>>()?;
            Val::Record(fields)
        }
        Type::Option(option) => match value {
            Value::Null => Val::Option(None),
            _ => Val::Option(Some(Box::new(from_json(value, &option.ty())?))),
        },
        Type::Result(result) => {
            let (case, payload) = single_entry(value).ok_or_else(mismatch)?;
            let payload_ty = match case {
                "ok" => result.ok(),
                "err" => result.err(),
                _ => return Err(mismatch()),
            };
            let payload = optional_payload(payload, payload_ty.as_ref(), case)?;
            Val::Result(if case == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            })
        }
        Type::Enum(cases) => {
            let name = value.as_str().ok_or_else(mismatch)?;
            if !cases.names().any(|case| case == name) {
                return Err(mismatch());
            }
            Val::Enum(name.to_string())
        }
        Type::Variant(variant) => {
            let (name, payload) = match value {
                Value::String(name) => (name.as_str(), None),
                _ => single_entry(value).ok_or_else(mismatch)?,
            };
            let case = variant
                .cases()
                .find(|case| case.name == name)
                .ok_or_else(mismatch)?;
            let payload = optional_payload(payload, case.ty.as_ref(), name)?;
            Val::Variant(name.to_string(), payload)
        }
        Type::Flags(flags) => {
            let names = value.as_array().ok_or_else(mismatch)?;
            let mut set = Vec::with_capacity(names.len());
            for name in names {
                match name.as_str() {
                    Some(name) if flags.names().any(|flag| flag == name) => {
                        set.push(name.to_string());
                    }
                    _ => return Err(mismatch()),
                }
            }
            Val::Flags(set)
        }
        Type::Map(map) => {
            let pairs = value.as_array().ok_or_else(mismatch)?;
            let mut entries = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let step = format!("[{i}]");
                match pair.as_array().map(Vec::as_slice) {
                    Some([key, item]) => entries.push((
                        from_json(key, &map.key()).map_err(|m| m.at(&format!("{step}[0]")))?,
                        from_json(item, &map.value()).map_err(|m| m.at(&format!("{step}[1]")))?,
                    )),
                    _ => return Err(mismatch()),
                }
            }
            Val::Map(entries)
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(mismatch());
        }
    })
}

fn signed<T: TryFrom<i64>>(value: &Value) -> Option<T> {
    T::try_from(value.as_i64()?).ok()
}

fn unsigned<T: TryFrom<u64>>(value: &Value) -> Option<T> {
    T::try_from(value.as_u64()?).ok()
}

/// The elements of a list, `None` if `value` is not a list of `length`.
fn elements(value: &Value, ty: &Type, length: Option<usize>) -> Option<Result<Vec<Val>, Mismatch>> {
    let items = value.as_array()?;
    if length.is_some_and(|length| length != items.len()) {
        return None;
    }
    Some(
        items
            .iter()
            .enumerate()
            .map(|(i, item)| from_json(item, ty).map_err(|m| m.at(&format!("[{i}]"))))
            .collect(),
    )
}

/// The one key of an object like `{"ok": 1}`, and its value.
fn single_entry(value: &Value) -> Option<(&str, Option<&Value>)> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let (key, payload) = object.iter().next()?;
    Some((key.as_str(), Some(payload)))
}

/// The payload of a case: required if the case has a type, else absent or
/// `null`.
fn optional_payload(
    payload: Option<&Value>,
    ty: Option<&Type>,
    case: &str,
) -> Result<Option<Box<Val>>, Mismatch> {
    match (ty, payload) {
        (Some(ty), Some(payload)) => Ok(Some(Box::new(
            from_json(payload, ty).map_err(|m| m.at(&format!(".{case}")))?,
        ))),
        (Some(ty), None) => Err(Mismatch::new(ty, &Value::Null).at(&format!(".{case}"))),
        (None, None | Some(Value::Null)) => Ok(None),
        (None, Some(other)) => Err(Mismatch {
            path: format!(".{case}"),
            expected: "no payload (null)".to_string(),
            found: brief(other),
        }),
    }
}

/// A value as JSON, the inverse of [`from_json`].
pub(crate) fn to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        Val::Float32(x) => float(f64::from(*x)),
        Val::Float64(x) => float(*x),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Map(entries) => Value::Array(
            entries
                .iter()
                .map(|(key, value)| Value::Array(vec![to_json(key), to_json(value)]))
                .collect(),
        ),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), to_json(value)))
                .collect(),
        ),
        Val::Option(None) => Value::Null,
        Val::Option(Some(value)) => to_json(value),
        Val::Result(result) => {
            let (case, payload) = match result {
                Ok(payload) => ("ok", payload),
                Err(payload) => ("err", payload),
            };
            let payload = payload.as_deref().map_or(Value::Null, to_json);
            Value::Object(Map::from_iter([(case.to_string(), payload)]))
        }
        Val::Enum(name) => Value::String(name.clone()),
        Val::Variant(name, None) => Value::String(name.clone()),
        Val::Variant(name, Some(payload)) => {
            Value::Object(Map::from_iter([(name.clone(), to_json(payload))]))
        }
        Val::Flags(names) => Value::Array(names.iter().cloned().map(Value::String).collect()),
        Val::Resource(_) => Value::String("<resource>".to_string()),
        Val::Future(_) => Value::String("<future>".to_string()),
        Val::Stream(_) => Value::String("<stream>".to_string()),
        Val::ErrorContext(_) => Value::String("<error-context>".to_string()),
    }
}

/// A JSON number as an f32: one beyond f32's range is refused rather than
/// turned into an infinity, which JSON cannot write back as a number.
fn float32(value: &Value) -> Option<f32> {
    let x = value.as_f64()?;
    let narrowed = x as f32;
    narrowed.is_finite().then_some(narrowed)
}

/// JSON has no NaN or infinity: those become strings.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

/// Whether a value of this type can be written as JSON at all.
pub(crate) fn expressible(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            false
        }
        Type::List(list) => expressible(&list.ty()),
        Type::FixedLengthList(list) => expressible(&list.ty()),
        Type::Map(map) => expressible(&map.key()) && expressible(&map.value()),
        Type::Tuple(tuple) => tuple.types().all(|ty| expressible(&ty)),
        Type::Record(record) => record.fields().all(|field| expressible(&field.ty)),
        Type::Option(option) => expressible(&option.ty()),
        Type::Result(result) => {
            result.ok().is_none_or(|ty| expressible(&ty))
                && result.err().is_none_or(|ty| expressible(&ty))
        }
        Type::Variant(variant) => variant
            .cases()
            .all(|case| case.ty.is_none_or(|ty| expressible(&ty))),
        _ => true,
    }
}

/// A type in WIT's notation (records and variants spelled out).
pub(crate) fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", describe(&list.ty())),
        Type::FixedLengthList(list) => format!("list<{}, {}>", describe(&list.ty()), list.len()),
        Type::Map(map) => format!("map<{}, {}>", describe(&map.key()), describe(&map.value())),
        Type::Tuple(tuple) => {
            let items: Vec<String> = tuple.types().map(|ty| describe(&ty)).collect();
            format!("tuple<{}>", items.join(", "))
        }
        Type::Record(record) => {
            let fields: Vec<String> = record
                .fields()
                .map(|field| format!("{}: {}", field.name, describe(&field.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Option(option) => format!("option<{}>", describe(&option.ty())),
        Type::Result(result) => {
            let part = |ty: Option<Type>| ty.map_or("_".to_string(), |ty| describe(&ty));
            format!("result<{}, {}>", part(result.ok()), part(result.err()))
        }
        Type::Enum(cases) => {
            let names: Vec<&str> = cases.names().collect();
            format!("enum {{ {} }}", names.join(", "))
        }
        Type::Variant(variant) => {
            let cases: Vec<String> = variant
                .cases()
                .map(|case| match case.ty {
                    Some(ty) => format!("{}({})", case.name, describe(&ty)),
                    None => case.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Flags(flags) => {
            let names: Vec<&str> = flags.names().collect();
            format!("flags {{ {} }}", names.join(", "))
        }
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// A JSON value in a few words, for error messages.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wasmtime::component::{Type, Val};

    use super::{from_json, to_json};

    #[test]
    fn an_f32_beyond_its_range_is_refused_not_made_infinite() {
        for beyond in [json!(1e300), json!(-1e39)] {
            let refused = from_json(&beyond, &Type::Float32).unwrap_err();
            assert_eq!(refused.expected, "f32");
        }
        let largest = json!(f64::from(f32::MAX));
        let val = from_json(&largest, &Type::Float32).unwrap();
        assert_eq!(val, Val::Float32(f32::MAX));
        assert_eq!(from_json(&to_json(&val), &Type::Float32).unwrap(), val);
        // An f64 takes the same numbers whole.
        assert_eq!(
            from_json(&json!(1e300), &Type::Float64).unwrap(),
            Val::Float64(1e300)
        );
    }
}
