//! `--invoke`: JSON to component-model values and back, against arbitrary
//! WIT types.
//!
//! wit-smith writes an arbitrary WIT package; wit-component makes each of
//! its worlds a component (over a module that implements nothing), and
//! wasmtime compiles it, which gives the real `Type` of every parameter and
//! result of every function the component imports or exports. For each
//! function:
//! - arguments written to fit (by `json_for`) must convert;
//! - every value that converts, from those or from arbitrary JSON, must
//!   come back as the same value from the JSON it is written as;
//! - arbitrary bytes as an input must convert or be refused, never panic.
//!
//! Bound: no single allocation over 256 MiB (compiling a component is the
//! largest user).

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use wasmpool::fuzzing::{arguments, expressible, from_json, to_json};
use wasmpool_fuzz::{Bounded, json_for};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Type};
use wasmtime::{Config, Engine};

#[global_allocator]
static ALLOCATOR: Bounded = Bounded::new();

/// A function's parameters and results, as `--invoke` sees them.
struct Signature {
    params: Vec<(String, Type)>,
    results: Vec<Type>,
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        // Only the types are used: the quickest compile will do.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        Engine::new(&config).expect("an engine")
    })
}

/// The signatures of one world's functions.
type World = Arc<Vec<Signature>>;

/// The signatures of every function of each world of the WIT package
/// `wit`, compiled once per package (libFuzzer mutates the values far more
/// often than the types).
fn signatures(wit: &[u8]) -> Vec<World> {
    static SEEN: OnceLock<Mutex<HashMap<Vec<u8>, Vec<World>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(found) = seen.lock().unwrap().get(wit) {
        return found.clone();
    }
    let worlds = components(wit)
        .iter()
        .filter_map(|bytes| {
            // wit-component can encode proposals that wasmtime does not
            // enable (cm-implements, seen in a 600 s run): wasmpool cannot
            // load such a component either, so it has no `--invoke` to test.
            let component = Component::new(engine(), bytes).ok()?;
            let ty = component.component_type();
            let mut found = Vec::new();
            for (_, item) in ty.imports(engine()).chain(ty.exports(engine())) {
                collect(&item.ty, &mut found);
            }
            Some(Arc::new(found))
        })
        .collect::<Vec<_>>();
    let mut seen = seen.lock().unwrap();
    if seen.len() > 256 {
        seen.clear();
    }
    seen.insert(wit.to_vec(), worlds.clone());
    worlds
}

fn collect(item: &ComponentItem, found: &mut Vec<Signature>) {
    match item {
        ComponentItem::ComponentFunc(func) => found.push(Signature {
            params: func
                .params()
                .map(|(name, ty)| (name.to_string(), ty))
                .collect(),
            results: func.results().collect(),
        }),
        ComponentItem::ComponentInstance(instance) => {
            for (_, item) in instance.exports(engine()) {
                collect(&item.ty, found);
            }
        }
        _ => {}
    }
}

/// Each world of the package, as a component.
fn components(wit: &[u8]) -> Vec<Vec<u8>> {
    let Ok(wit_parser::decoding::DecodedWasm::WitPackage(resolve, package)) =
        wit_parser::decoding::decode(wit)
    else {
        return Vec::new();
    };
    resolve.packages[package]
        .worlds
        .values()
        .filter_map(|&world| {
            let mut module = wit_component::dummy_module(
                &resolve,
                world,
                wit_parser::ManglingAndAbi::Standard32,
            );
            wit_component::embed_component_metadata(
                &mut module,
                &resolve,
                world,
                wit_component::StringEncoding::UTF8,
            )
            .ok()?;
            wit_component::ComponentEncoder::default()
                .module(&module)
                .ok()?
                .validate(true)
                .encode()
                .ok()
        })
        .collect()
}

/// A value that converted must convert back to itself from its JSON.
fn round_trip(json: &serde_json::Value, ty: &Type) {
    let Ok(val) = from_json(json, ty) else { return };
    let written = to_json(&val);
    match from_json(&written, ty) {
        Ok(again) => assert_eq!(again, val, "{json} read as {val:?}, written as {written}"),
        Err(why) => {
            panic!("{json} read as {val:?}, written as {written}, which does not read back: {why}")
        }
    }
}

fuzz_target!(
    init: ALLOCATOR.set(256 << 20),
    |data: &[u8]| {
        let mut u = Unstructured::new(data);
        let config = wit_smith::Config {
            max_packages: 2,
            max_type_size: 30,
            max_interface_items: 4,
            max_world_items: 4,
            max_pkg_items: 3,
            max_type_parts: 4,
            max_files_per_package: 1,
            max_resource_items: 2,
            ..wit_smith::Config::default()
        };
        let Ok(wit) = wit_smith::smith(&config, &mut u) else { return };
        for world in signatures(&wit) {
            for signature in world.iter() {
                let expressible_params = signature.params.iter().all(|(_, ty)| expressible(ty));
                if expressible_params {
                    let Ok(args) = signature
                        .params
                        .iter()
                        .map(|(_, ty)| json_for(ty, &mut u, 0))
                        .collect::<arbitrary::Result<Vec<_>>>()
                    else {
                        return;
                    };
                    let input = serde_json::to_vec(&args).unwrap();
                    if let Err(why) = arguments(&input, &signature.params) {
                        panic!("arguments written to fit were refused: {why}");
                    }
                    for (json, (_, ty)) in args.iter().zip(&signature.params) {
                        round_trip(json, ty);
                    }
                }
                for ty in signature.results.iter().filter(|ty| expressible(ty)) {
                    if let Ok(json) = json_for(ty, &mut u, 0) {
                        round_trip(&json, ty);
                    }
                }
                // Whatever bytes are left, as an input.
                let rest: &[u8] = u.arbitrary().unwrap_or_default();
                if let Ok(values) = arguments(rest, &signature.params) {
                    assert_eq!(values.len(), signature.params.len());
                    let json: Vec<serde_json::Value> = serde_json::from_slice(rest).unwrap();
                    for (json, (_, ty)) in json.iter().zip(&signature.params) {
                        round_trip(json, ty);
                    }
                }
            }
        }
    }
);
