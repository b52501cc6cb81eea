//! What the fuzz targets of `fuzz/` reach inside the library: the decoders
//! that meet untrusted bytes. Built only with the `fuzzing` feature; not
//! part of the API.

use std::time::Instant;

use bytes::Bytes;
use wasmtime::component::{Type, Val};

use crate::data::wire::{self, Reader};
use crate::wasm::values;

/// `--invoke`'s arguments from an input (a JSON array).
pub fn arguments(input: &[u8], params: &[(String, Type)]) -> Result<Vec<Val>, String> {
    values::arguments(input, params)
}

/// The value of type `ty` that `value` stands for, or why it does not fit.
pub fn from_json(value: &serde_json::Value, ty: &Type) -> Result<Val, String> {
    values::from_json(value, ty).map_err(|mismatch| format!("{mismatch:?}"))
}

/// A value as JSON, as a record shows an `--invoke` result.
pub fn to_json(val: &Val) -> serde_json::Value {
    values::to_json(val)
}

/// Whether values of `ty` can be written as JSON at all.
pub fn expressible(ty: &Type) -> bool {
    values::expressible(ty)
}

/// Reads `message` as each kind of message a rank receives (a task to
/// load, progress, a job, a job's results) and says which decoded.
pub fn decode_cluster_message(message: &[u8]) -> [bool; 4] {
    let shared = Bytes::copy_from_slice(message);
    let job = wire::read_job(&mut Reader::new(&shared), &shared).is_ok();
    let results = wire::read_results(&mut Reader::new(&shared), &shared, 0, Instant::now()).is_ok();
    [
        wire::read_load(message).is_ok(),
        wire::read_progress(message).is_ok(),
        job,
        results,
    ]
}
