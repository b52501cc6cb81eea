//! Plain data in CPython's `marshal` format (version 2), the fast way
//! between the host and a sandbox: the sandbox reads and writes it with
//! `marshal`, in C, where the wire format is Python code.
//!
//! Only what both sides read back exactly goes this way: values of the
//! exact types None, bool, int, float, complex, str, bytes, list, tuple,
//! dict, set and frozenset, nested at most [`MAX_DEPTH`]. Anything else (a
//! subclass, a bytearray, what is not data) goes in the wire format, which
//! keeps its type or raises the `TypeError` that names it; [`pack`] writes
//! a leading `m` or `w` to say which.
//!
//! The host never lets `marshal` read a sandbox's bytes: it can make code
//! objects. [`unpack`] reads the plain types only, checks every length
//! against the bytes it has and every nesting against [`MAX_DEPTH`], and
//! refuses the rest (code, references, `StopIteration`, `...`).

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};

use crate::wire::{self, MAX_DEPTH, malformed};

/// `value` as `m` and marshal bytes, or `w` and the wire format's where
/// marshal would not bring it back as it is; `TypeError` if it holds
/// anything but plain data.
#[pyfunction]
pub(crate) fn pack<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(64);
    out.push(b'm');
    if put(value, &mut out, 0)? {
        return Ok(PyBytes::new(value.py(), &out));
    }
    out.clear();
    out.push(b'w');
    wire::put(value, &mut out, 0)?;
    Ok(PyBytes::new(value.py(), &out))
}

/// The value `data` holds (as [`pack`] writes it); `ValueError("malformed
/// data: ...")` if none.
#[pyfunction]
pub(crate) fn unpack<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match data.split_first() {
        Some((b'm', rest)) => loads(py, rest),
        Some((b'w', rest)) => wire::wire_loads(py, rest),
        _ => Err(malformed("no format byte (m or w) first")),
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) -> bool {
    match i32::try_from(len) {
        Ok(len) => {
            out.extend_from_slice(&len.to_le_bytes());
            true
        }
        Err(_) => false,
    }
}

fn put_sized(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) -> bool {
    out.push(tag);
    put_len(out, bytes.len()) && {
        out.extend_from_slice(bytes);
        true
    }
}

/// An int: `i` and 32 bits where it fits, else `l`, a signed count of
/// 15-bit digits and the digits, least significant first.
fn put_int(value: &Bound<'_, PyInt>, out: &mut Vec<u8>) -> PyResult<bool> {
    if let Ok(small) = value.extract::<i64>() {
        if let Ok(small) = i32::try_from(small) {
            out.push(b'i');
            out.extend_from_slice(&small.to_le_bytes());
        } else {
            put_long(small < 0, &small.unsigned_abs().to_le_bytes(), out);
        }
        return Ok(true);
    }
    let negative = value.lt(0)?;
    let magnitude = value.call_method0("__abs__")?;
    let bits: usize = magnitude.call_method0("bit_length")?.extract()?;
    let bytes = magnitude.call_method1("to_bytes", (bits.div_ceil(8), "little"))?;
    put_long(negative, bytes.cast::<PyBytes>()?.as_bytes(), out);
    Ok(true)
}

fn put_long(negative: bool, magnitude_le: &[u8], out: &mut Vec<u8>) {
    let mut digits = Vec::with_capacity(magnitude_le.len() * 8 / 15 + 1);
    let (mut acc, mut held) = (0u32, 0u32);
    for &byte in magnitude_le {
        acc |= u32::from(byte) << held;
        held += 8;
        while held >= 15 {
            digits.push((acc & 0x7fff) as u16);
            acc >>= 15;
            held -= 15;
        }
    }
    digits.push(acc as u16);
    while digits.last() == Some(&0) {
        digits.pop();
    }
    out.push(b'l');
    // At most 2^31 - 1 digits, since the value came from a Python int that
    // fit in memory with 30 bits a digit.
    let count = digits.len() as i32;
    out.extend_from_slice(&(if negative { -count } else { count }).to_le_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_le_bytes());
    }
}

fn put_items<'py>(
    tag: u8,
    len: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: usize,
) -> PyResult<bool> {
    if depth >= MAX_DEPTH {
        return Ok(false);
    }
    out.push(tag);
    if !put_len(out, len) {
        return Ok(false);
    }
    for item in items {
        if !put(&item, out, depth + 1)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes `value` if marshal brings it back as it is: `Ok(false)` if it
/// needs the wire format instead.
fn put(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<bool> {
    if let Ok(int) = value.cast_exact::<PyInt>() {
        put_int(int, out)
    } else if let Ok(text) = value.cast_exact::<PyString>() {
        Ok(match text.to_str() {
            Ok(text) => put_sized(out, b'u', text.as_bytes()),
            // Lone surrogates: as marshal writes them.
            Err(_) => {
                let bytes = text.call_method1("encode", ("utf-8", "surrogatepass"))?;
                put_sized(out, b'u', bytes.cast::<PyBytes>()?.as_bytes())
            }
        })
    } else if let Ok(float) = value.cast_exact::<PyFloat>() {
        out.push(b'g');
        out.extend_from_slice(&float.value().to_le_bytes());
        Ok(true)
    } else if value.is_none() {
        out.push(b'N');
        Ok(true)
    } else if let Ok(flag) = value.cast_exact::<PyBool>() {
        out.push(if flag.is_true() { b'T' } else { b'F' });
        Ok(true)
    } else if let Ok(bytes) = value.cast_exact::<PyBytes>() {
        Ok(put_sized(out, b's', bytes.as_bytes()))
    } else if let Ok(list) = value.cast_exact::<PyList>() {
        put_items(b'[', list.len(), list.iter(), out, depth)
    } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
        put_items(b'(', tuple.len(), tuple.iter(), out, depth)
    } else if let Ok(dict) = value.cast_exact::<PyDict>() {
        if depth >= MAX_DEPTH {
            return Ok(false);
        }
        out.push(b'{');
        for (key, item) in dict.iter() {
            if !put(&key, out, depth + 1)? || !put(&item, out, depth + 1)? {
                return Ok(false);
            }
        }
        out.push(b'0');
        Ok(true)
    } else if let Ok(set) = value.cast_exact::<PySet>() {
        put_items(b'<', set.len(), set.iter(), out, depth)
    } else if let Ok(set) = value.cast_exact::<PyFrozenSet>() {
        put_items(b'>', set.len(), set.iter(), out, depth)
    } else if let Ok(complex) = value.cast_exact::<PyComplex>() {
        out.push(b'y');
        out.extend_from_slice(&complex.real().to_le_bytes());
        out.extend_from_slice(&complex.imag().to_le_bytes());
        Ok(true)
    } else {
        Ok(false)
    }
}

/// The value of marshal bytes, the plain types only.
fn loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut reader = Reader {
        bytes: wire::Reader { data, pos: 0 },
    };
    let value = reader.value(py, 0)?;
    if reader.left() != 0 {
        return Err(malformed(format!(
            "{} bytes after the value",
            reader.left()
        )));
    }
    Ok(value)
}

/// Marshal's types over the wire format's checked reader.
struct Reader<'a> {
    bytes: wire::Reader<'a>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        self.bytes.take(n)
    }

    fn fixed<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        self.bytes.fixed()
    }

    /// The bytes not read yet.
    fn left(&self) -> usize {
        self.bytes.data.len() - self.bytes.pos
    }

    /// A count of items that take at least `unit` bytes each, checked
    /// against the bytes left.
    fn count(&mut self, unit: usize) -> PyResult<usize> {
        let count = i32::from_le_bytes(self.fixed()?);
        let count = usize::try_from(count)
            .map_err(|_| malformed(format!("a negative length ({count})")))?;
        if count.saturating_mul(unit) > self.left() {
            return Err(malformed(format!("a length of {count} past the end")));
        }
        Ok(count)
    }

    fn text<'py>(&mut self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.take(size)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(PyString::new(py, text).into_any()),
            Err(_) => PyBytes::new(py, bytes)
                .call_method1("decode", ("utf-8", "surrogatepass"))
                .map_err(malformed),
        }
    }

    fn value<'py>(&mut self, py: Python<'py>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        let at = self.bytes.pos;
        let [tag] = self.fixed()?;
        Ok(match tag {
            b'N' => py.None().into_bound(py),
            b'T' => PyBool::new(py, true).to_owned().into_any(),
            b'F' => PyBool::new(py, false).to_owned().into_any(),
            b'i' => i32::from_le_bytes(self.fixed()?)
                .into_pyobject(py)?
                .into_any(),
            b'l' => self.long(py)?,
            b'g' => PyFloat::new(py, f64::from_le_bytes(self.fixed()?)).into_any(),
            b'y' => {
                let real = f64::from_le_bytes(self.fixed()?);
                let imag = f64::from_le_bytes(self.fixed()?);
                PyComplex::from_doubles(py, real, imag).into_any()
            }
            b's' => {
                let size = self.count(1)?;
                PyBytes::new(py, self.take(size)?).into_any()
            }
            // Text, interned text, and (as later versions write them)
            // ASCII text with a long or a short length.
            b'u' | b't' | b'a' | b'A' => {
                let size = self.count(1)?;
                self.text(py, size)?
            }
            b'z' | b'Z' => {
                let [size] = self.fixed()?;
                self.text(py, usize::from(size))?
            }
            b'(' | b')' | b'[' | b'{' | b'<' | b'>' => {
                if depth >= MAX_DEPTH {
                    return Err(malformed(format!("nested more than {MAX_DEPTH} deep")));
                }
                self.container(py, tag, depth + 1)?
            }
            other => {
                return Err(malformed(format!(
                    "{} at byte {at}",
                    match other & 0x7f {
                        b'c' => "code, which is not data".to_string(),
                        _ if other & 0x80 != 0 =>
                            "a reference, which version 2 never writes".to_string(),
                        _ => format!("unknown type {other:#04x}"),
                    }
                )));
            }
        })
    }

    fn long<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let count = i32::from_le_bytes(self.fixed()?);
        let negative = count < 0;
        let digits = count.unsigned_abs() as usize;
        if digits.saturating_mul(2) > self.left() {
            return Err(malformed(format!("a length of {digits} past the end")));
        }
        let mut magnitude = Vec::with_capacity(digits * 15 / 8 + 2);
        let (mut acc, mut held) = (0u32, 0u32);
        for index in 0..digits {
            let digit = u16::from_le_bytes(self.fixed()?);
            if digit > 0x7fff || (digit == 0 && index + 1 == digits) {
                return Err(malformed(format!("a bad digit ({digit}) in an int")));
            }
            acc |= u32::from(digit) << held;
            held += 15;
            while held >= 8 {
                magnitude.push(acc as u8);
                acc >>= 8;
                held -= 8;
            }
        }
        magnitude.push(acc as u8);
        if magnitude.len() <= 8 {
            let mut word = [0u8; 8];
            word[..magnitude.len()].copy_from_slice(&magnitude);
            let value = u64::from_le_bytes(word);
            if let Ok(value) = i64::try_from(value) {
                let value = if negative { -value } else { value };
                return Ok(value.into_pyobject(py)?.into_any());
            }
        }
        let value = py
            .get_type::<PyInt>()
            .call_method1("from_bytes", (PyBytes::new(py, &magnitude), "little"))?;
        if negative { value.neg() } else { Ok(value) }
    }

    fn container<'py>(
        &mut self,
        py: Python<'py>,
        tag: u8,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if tag == b'{' {
            let dict = PyDict::new(py);
            loop {
                // A dict ends at its null, where a key would begin.
                if self.bytes.data.get(self.bytes.pos) == Some(&b'0') {
                    self.bytes.pos += 1;
                    return Ok(dict.into_any());
                }
                let key = self.value(py, depth)?;
                let item = self.value(py, depth)?;
                dict.set_item(key, item).map_err(malformed)?;
            }
        }
        let count = if tag == b')' {
            let [count] = self.fixed()?;
            usize::from(count)
        } else {
            self.count(1)?
        };
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(py, depth)?);
        }
        Ok(match tag {
            b'[' => PyList::new(py, items)?.into_any(),
            b'(' | b')' => PyTuple::new(py, items)?.into_any(),
            b'<' => PySet::new(py, items).map_err(malformed)?.into_any(),
            _ => PyFrozenSet::new(py, items).map_err(malformed)?.into_any(),
        })
    }
}
