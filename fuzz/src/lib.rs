//! What the fuzz targets share: an allocator that holds each target to the
//! allocation bound it states, and values of a WIT type written as JSON.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};
use wasmtime::component::Type;

/// The system allocator, with a ceiling on any one allocation: a decoder
/// that sizes a buffer from a length it read (a count of four billion in a
/// malformed frame, say) aborts the run here, and libFuzzer keeps the
/// input as a crash, instead of the allocation passing while the machine
/// happens to have the memory.
pub struct Bounded {
    limit: AtomicUsize,
}

impl Bounded {
    /// No bound until [`Bounded::set`].
    pub const fn new() -> Bounded {
        Bounded {
            limit: AtomicUsize::new(usize::MAX),
        }
    }

    /// Bounds every allocation from now on to `bytes`.
    pub fn set(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    fn check(&self, layout: Layout) {
        let limit = self.limit.load(Ordering::Relaxed);
        if layout.size() > limit {
            // Not a panic: that would allocate, and could be caught.
            eprintln!(
                "one allocation of {} bytes, over the target's bound of {limit}",
                layout.size()
            );
            std::process::abort();
        }
    }
}

impl Default for Bounded {
    fn default() -> Bounded {
        Bounded::new()
    }
}

// SAFETY: every call goes to the system allocator unchanged; the check
// only reads the layout.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.check(layout);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.check(layout);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.check(Layout::from_size_align(new_size, layout.align()).unwrap_or(layout));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// How deep [`json_for`] nests before it stops choosing more elements.
const MAX_DEPTH: usize = 6;

/// A JSON value of type `ty` as the `--invoke` mapping writes it
/// (`wasm/values.rs`): one that must convert. `ty` must be expressible.
pub fn json_for(ty: &Type, u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    let deeper = depth + 1;
    // Past the depth, lists are empty and options `null`.
    let count = |u: &mut Unstructured<'_>| -> Result<usize> {
        if depth >= MAX_DEPTH {
            Ok(0)
        } else {
            u.int_in_range(0..=3)
        }
    };
    Ok(match ty {
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::S8 => Value::from(u.arbitrary::<i8>()?),
        Type::S16 => Value::from(u.arbitrary::<i16>()?),
        Type::S32 => Value::from(u.arbitrary::<i32>()?),
        Type::S64 => Value::from(u.arbitrary::<i64>()?),
        Type::U8 => Value::from(u.arbitrary::<u8>()?),
        Type::U16 => Value::from(u.arbitrary::<u16>()?),
        Type::U32 => Value::from(u.arbitrary::<u32>()?),
        Type::U64 => Value::from(u.arbitrary::<u64>()?),
        // Finite numbers of the type's range (JSON has no NaN or infinity).
        Type::Float32 => number(f64::from(u.arbitrary::<f32>()?)),
        Type::Float64 => number(u.arbitrary()?),
        Type::Char => Value::String(u.arbitrary::<char>()?.to_string()),
        Type::String => Value::String(u.arbitrary()?),
        Type::List(list) => Value::Array(
            (0..count(u)?)
                .map(|_| json_for(&list.ty(), u, deeper))
                .collect::<Result<_>>()?,
        ),
        Type::FixedLengthList(list) => Value::Array(
            (0..list.len())
                .map(|_| json_for(&list.ty(), u, deeper))
                .collect::<Result<_>>()?,
        ),
        Type::Tuple(tuple) => Value::Array(
            tuple
                .types()
                .map(|ty| json_for(&ty, u, deeper))
                .collect::<Result<_>>()?,
        ),
        Type::Record(record) => {
            let mut object = Map::new();
            for field in record.fields() {
                object.insert(field.name.to_string(), json_for(&field.ty, u, deeper)?);
            }
            Value::Object(object)
        }
        Type::Option(option) => {
            if depth >= MAX_DEPTH || u.arbitrary()? {
                Value::Null
            } else {
                json_for(&option.ty(), u, deeper)?
            }
        }
        Type::Result(result) => {
            let (case, ty) = if u.arbitrary()? {
                ("ok", result.ok())
            } else {
                ("err", result.err())
            };
            let payload = match ty {
                Some(ty) => json_for(&ty, u, deeper)?,
                None => Value::Null,
            };
            Value::Object(Map::from_iter([(case.to_string(), payload)]))
        }
        Type::Enum(cases) => {
            let names: Vec<&str> = cases.names().collect();
            Value::String(u.choose(&names)?.to_string())
        }
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().collect();
            let case = u.choose(&cases)?;
            match &case.ty {
                None => Value::String(case.name.to_string()),
                Some(ty) => Value::Object(Map::from_iter([(
                    case.name.to_string(),
                    json_for(ty, u, deeper)?,
                )])),
            }
        }
        Type::Flags(flags) => {
            let mut set = Vec::new();
            for name in flags.names() {
                if u.arbitrary()? {
                    set.push(Value::String(name.to_string()));
                }
            }
            Value::Array(set)
        }
        Type::Map(map) => Value::Array(
            (0..count(u)?)
                .map(|_| {
                    Ok(Value::Array(vec![
                        json_for(&map.key(), u, deeper)?,
                        json_for(&map.value(), u, deeper)?,
                    ]))
                })
                .collect::<Result<_>>()?,
        ),
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(arbitrary::Error::IncorrectFormat);
        }
    })
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::from(0), Value::Number)
}
