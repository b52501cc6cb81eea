//! The wire format of `wasmpool_wire.py`, at native speed for the host's
//! side: arguments packed, results unpacked. The sandbox runs the Python
//! module; `tests/test_wire.py` holds the two to the same bytes.
//!
//! [`loads`] builds plain data only and checks every length against the
//! bytes it has, and every nesting against [`MAX_DEPTH`].

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet,
    PyString, PyTuple,
};

/// How deeply containers may nest, both ways (`MAX_DEPTH` of the module).
pub(crate) const MAX_DEPTH: usize = 200;

/// `value` as bytes; `TypeError` if it holds anything but plain data.
#[pyfunction]
pub(crate) fn wire_dumps<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(64);
    put(value, &mut out, 0)?;
    Ok(PyBytes::new(value.py(), &out))
}

/// The value `data` holds; `ValueError("malformed data: ...")` if none.
#[pyfunction]
pub(crate) fn wire_loads<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut reader = Reader { data, pos: 0 };
    let value = reader.value(py, 0)?;
    if reader.pos != data.len() {
        return Err(malformed(format!(
            "{} bytes after the value",
            data.len() - reader.pos
        )));
    }
    Ok(value)
}

pub(crate) fn malformed(what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("malformed data: {what}"))
}

fn put_len(out: &mut Vec<u8>, len: usize) -> PyResult<()> {
    let len = u32::try_from(len)
        .map_err(|_| PyTypeError::new_err("cannot send a value of 4 GiB or more"))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) -> PyResult<()> {
    out.push(tag);
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_int(value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(small) = value.extract::<i64>() {
        out.push(b'i');
        out.extend_from_slice(&small.to_le_bytes());
        return Ok(());
    }
    let py = value.py();
    let bits: usize = value.call_method0("bit_length")?.extract()?;
    let size = (bits + 8) / 8;
    let kwargs = PyDict::new(py);
    kwargs.set_item("signed", true)?;
    let bytes = value.call_method("to_bytes", (size, "little"), Some(&kwargs))?;
    put_bytes(out, b'I', bytes.cast::<PyBytes>()?.as_bytes())
}

fn put_str(value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let text = value.cast::<PyString>()?;
    match text.to_str() {
        Ok(text) => put_bytes(out, b's', text.as_bytes()),
        // Lone surrogates: as Python encodes them.
        Err(_) => {
            let bytes = text.call_method1("encode", ("utf-8", "surrogatepass"))?;
            put_bytes(out, b's', bytes.cast::<PyBytes>()?.as_bytes())
        }
    }
}

/// Refuses a container nested past [`MAX_DEPTH`].
fn nest(depth: usize) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(PyTypeError::new_err(format!(
            "cannot send data nested more than {MAX_DEPTH} deep"
        )));
    }
    Ok(())
}

fn put_items<'py>(
    tag: u8,
    len: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: usize,
) -> PyResult<()> {
    nest(depth)?;
    out.push(tag);
    put_len(out, len)?;
    for item in items {
        put(&item, out, depth + 1)?;
    }
    Ok(())
}

fn put_dict(dict: &Bound<'_, PyDict>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    nest(depth)?;
    out.push(b'd');
    put_len(out, dict.len())?;
    for (key, item) in dict.iter() {
        put(&key, out, depth + 1)?;
        put(&item, out, depth + 1)?;
    }
    Ok(())
}

pub(crate) fn put(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if value.is_exact_instance_of::<PyInt>() {
        put_int(value, out)
    } else if value.is_exact_instance_of::<PyString>() {
        put_str(value, out)
    } else if let Ok(float) = value.cast_exact::<PyFloat>() {
        out.push(b'f');
        out.extend_from_slice(&float.value().to_le_bytes());
        Ok(())
    } else if value.is_none() {
        out.push(b'N');
        Ok(())
    } else if let Ok(flag) = value.cast_exact::<PyBool>() {
        out.push(if flag.is_true() { b'T' } else { b'F' });
        Ok(())
    } else if let Ok(bytes) = value.cast_exact::<PyBytes>() {
        put_bytes(out, b'b', bytes.as_bytes())
    } else if let Ok(list) = value.cast_exact::<PyList>() {
        put_items(b'l', list.len(), list.iter(), out, depth)
    } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
        put_items(b't', tuple.len(), tuple.iter(), out, depth)
    } else if let Ok(dict) = value.cast_exact::<PyDict>() {
        put_dict(dict, out, depth)
    } else {
        put_other(value, out, depth)
    }
}

/// Subclasses of the plain types, and the rarer plain types, in the order
/// the Python module tries them.
fn put_other(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if let Ok(flag) = value.cast::<PyBool>() {
        out.push(if flag.is_true() { b'T' } else { b'F' });
        Ok(())
    } else if value.is_instance_of::<PyInt>() {
        let plain = value.py().get_type::<PyInt>().call1((value,))?;
        put_int(&plain, out)
    } else if let Ok(float) = value.cast::<PyFloat>() {
        out.push(b'f');
        out.extend_from_slice(&float.value().to_le_bytes());
        Ok(())
    } else if let Ok(complex) = value.cast::<PyComplex>() {
        out.push(b'c');
        out.extend_from_slice(&complex.real().to_le_bytes());
        out.extend_from_slice(&complex.imag().to_le_bytes());
        Ok(())
    } else if value.is_instance_of::<PyString>() {
        let plain = value.py().get_type::<PyString>().call1((value,))?;
        put_str(&plain, out)
    } else if let Ok(bytes) = value.cast::<PyBytes>() {
        put_bytes(out, b'b', bytes.as_bytes())
    } else if let Ok(array) = value.cast::<PyByteArray>() {
        put_bytes(out, b'a', &array.to_vec())
    } else if let Ok(list) = value.cast::<PyList>() {
        put_items(b'l', list.len(), list.iter(), out, depth)
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        put_items(b't', tuple.len(), tuple.iter(), out, depth)
    } else if let Ok(dict) = value.cast::<PyDict>() {
        put_dict(dict, out, depth)
    } else if let Ok(set) = value.cast::<PySet>() {
        put_items(b'S', set.len(), set.iter(), out, depth)
    } else if let Ok(set) = value.cast::<PyFrozenSet>() {
        put_items(b'z', set.len(), set.iter(), out, depth)
    } else {
        let kind = value.get_type();
        Err(PyTypeError::new_err(format!(
            "cannot send a {}.{} between the host and a sandbox: only plain data crosses \
             (None, bool, int, float, complex, str, bytes, and lists, tuples, dicts and sets \
             of them)",
            kind.module()?,
            kind.qualname()?
        )))
    }
}

/// Bytes read from the front, every length checked against what is left;
/// the wire format's reader, and the marshal reader's underneath.
pub(crate) struct Reader<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| malformed(format!("{n} bytes wanted past the end")))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    /// A length, checked against the bytes left: each of its items takes
    /// at least `unit` bytes.
    fn length(&mut self, unit: usize) -> PyResult<usize> {
        let length = u32::from_le_bytes(self.fixed()?) as usize;
        if length.saturating_mul(unit) > self.data.len() - self.pos {
            return Err(malformed(format!("a length of {length} past the end")));
        }
        Ok(length)
    }

    fn sized(&mut self) -> PyResult<&'a [u8]> {
        let size = self.length(1)?;
        self.take(size)
    }

    fn value<'py>(&mut self, py: Python<'py>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        let at = self.pos;
        let [tag] = self.fixed()?;
        Ok(match tag {
            b'i' => i64::from_le_bytes(self.fixed()?)
                .into_pyobject(py)?
                .into_any(),
            b's' => {
                let bytes = self.sized()?;
                match std::str::from_utf8(bytes) {
                    Ok(text) => PyString::new(py, text).into_any(),
                    Err(_) => PyBytes::new(py, bytes)
                        .call_method1("decode", ("utf-8", "surrogatepass"))
                        .map_err(malformed)?,
                }
            }
            b'f' => PyFloat::new(py, f64::from_le_bytes(self.fixed()?)).into_any(),
            b'N' => py.None().into_bound(py),
            b'T' => PyBool::new(py, true).to_owned().into_any(),
            b'F' => PyBool::new(py, false).to_owned().into_any(),
            b'b' => PyBytes::new(py, self.sized()?).into_any(),
            b'a' => PyByteArray::new(py, self.sized()?).into_any(),
            b'I' => {
                let bytes = PyBytes::new(py, self.sized()?);
                let kwargs = PyDict::new(py);
                kwargs.set_item("signed", true)?;
                py.get_type::<PyInt>().call_method(
                    "from_bytes",
                    (bytes, "little"),
                    Some(&kwargs),
                )?
            }
            b'c' => {
                let real = f64::from_le_bytes(self.fixed()?);
                let imag = f64::from_le_bytes(self.fixed()?);
                PyComplex::from_doubles(py, real, imag).into_any()
            }
            b'l' | b't' | b'S' | b'z' | b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(malformed(format!("nested more than {MAX_DEPTH} deep")));
                }
                self.container(py, tag, depth + 1)?
            }
            other => {
                return Err(malformed(format!("unknown tag {other:#04x} at byte {at}")));
            }
        })
    }

    fn container<'py>(
        &mut self,
        py: Python<'py>,
        tag: u8,
        depth: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        if tag == b'd' {
            let count = self.length(2)?;
            let dict = PyDict::new(py);
            for _ in 0..count {
                let key = self.value(py, depth)?;
                let item = self.value(py, depth)?;
                dict.set_item(key, item).map_err(malformed)?;
            }
            return Ok(dict.into_any());
        }
        let count = self.length(1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(py, depth)?);
        }
        Ok(match tag {
            b'l' => PyList::new(py, items)?.into_any(),
            b't' => PyTuple::new(py, items)?.into_any(),
            b'S' => PySet::new(py, items).map_err(malformed)?.into_any(),
            _ => PyFrozenSet::new(py, items).map_err(malformed)?.into_any(),
        })
    }
}
