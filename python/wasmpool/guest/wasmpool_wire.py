"""The data that crosses between the executor and its sandboxes.

A small self-describing binary format for plain data: ``None``, ``bool``,
``int`` of any size, ``float``, ``complex``, ``str``, ``bytes``,
``bytearray``, and ``list``, ``tuple``, ``dict``, ``set`` and ``frozenset``
of these, nested. Subclasses of these types travel as the base type (a
named tuple as a tuple, an ``IntEnum`` as an int). Nothing else does:
:func:`dumps` raises ``TypeError`` naming the value.

:func:`loads` builds only those types, checks every length against the
bytes it has and every nesting against :data:`MAX_DEPTH`, and raises
:class:`WireError` on anything else: bytes from a sandbox can never make
the host run code, as ``pickle.loads`` would.

The same module runs on both sides: the host imports it as
``wasmpool.guest.wasmpool_wire``, the sandbox as ``wasmpool_wire``.

What crosses per call goes by :func:`pack`: in ``marshal``'s format
(version 2) where the value holds only the exact plain types, which
``marshal`` reads and writes in C, else in this format; a leading ``m`` or
``w`` says which. Only the sandbox reads with :func:`unpack`, which lets
``marshal`` read its bytes: the host reads them with its native decoder,
which builds the plain types only (``marshal`` can make code objects).
"""

from __future__ import annotations

import marshal
import struct

__all__ = ["MAX_DEPTH", "WireError", "dumps", "loads", "pack", "unpack"]

#: How deeply containers may nest, both ways.
MAX_DEPTH = 200

_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_C128 = struct.Struct("<dd")
_U32 = struct.Struct("<I")
_SMALL = range(-(2**63), 2**63)


class WireError(ValueError):
    """Bytes that are not a value of the format."""


def pack(value: object) -> bytes:
    """``value`` as ``m`` and ``marshal`` bytes where it holds only the exact
    plain types (which ``marshal`` brings back as they are), else as ``w``
    and :func:`dumps`; ``TypeError`` if it holds anything but plain data."""
    if _marshals(value, 0):
        return b"m" + marshal.dumps(value, 2)
    return b"w" + dumps(value)


def unpack(data: bytes) -> object:
    """The value of :func:`pack`'s bytes. It trusts them: the sandbox's side
    only (``marshal`` can make code objects)."""
    if data[:1] == b"m":
        return marshal.loads(data[1:])
    if data[:1] == b"w":
        return loads(data[1:])
    raise WireError("malformed data: no format byte (m or w) first")


_SCALARS = frozenset({int, float, str, bytes, bool, type(None), complex})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def _marshals(value: object, depth: int) -> bool:
    """Whether ``marshal`` brings ``value`` back as it is, within
    :data:`MAX_DEPTH`. Loops, not generators: this runs per call, in the
    sandbox's interpreter, where a generator costs microseconds."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth >= MAX_DEPTH:
        return False
    depth += 1
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) not in _SCALARS and not _marshals(key, depth):
                return False
            if type(item) not in _SCALARS and not _marshals(item, depth):
                return False
        return True
    if kind in _SEQUENCES:
        for item in value:  # type: ignore[attr-defined]
            if type(item) not in _SCALARS and not _marshals(item, depth):
                return False
        return True
    return False


def dumps(value: object) -> bytes:
    """``value`` as bytes; ``TypeError`` if it holds anything but plain data."""
    out = bytearray()
    _put(value, out, 0)
    return bytes(out)


def _put(value: object, out: bytearray, depth: int) -> None:
    kind = type(value)
    if kind is int:
        _put_int(value, out)  # type: ignore[arg-type]
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")  # type: ignore[union-attr]
        out += b"s"
        out += _U32.pack(len(data))
        out += data
    elif kind is float:
        out += b"f"
        out += _F64.pack(value)
    elif value is None:
        out += b"N"
    elif value is True:
        out += b"T"
    elif value is False:
        out += b"F"
    elif kind is bytes:
        out += b"b"
        out += _U32.pack(len(value))  # type: ignore[arg-type]
        out += value  # type: ignore[operator]
    elif kind in _CONTAINERS:
        _put_container(_CONTAINERS[kind], value, out, depth)
    else:
        _put_other(value, out, depth)


_CONTAINERS: dict[type, bytes] = {
    list: b"l",
    tuple: b"t",
    dict: b"d",
    set: b"S",
    frozenset: b"z",
}


def _put_int(value: int, out: bytearray) -> None:
    if value in _SMALL:
        out += b"i"
        out += _I64.pack(value)
    else:
        size = (value.bit_length() + 8) // 8
        out += b"I"
        out += _U32.pack(size)
        out += value.to_bytes(size, "little", signed=True)


def _put_container(tag: bytes, value: object, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise TypeError(f"cannot send data nested more than {MAX_DEPTH} deep")
    out += tag
    out += _U32.pack(len(value))  # type: ignore[arg-type]
    if tag == b"d":
        for key, item in value.items():  # type: ignore[attr-defined]
            _put(key, out, depth + 1)
            _put(item, out, depth + 1)
    else:
        for item in value:  # type: ignore[attr-defined]
            _put(item, out, depth + 1)


def _put_other(value: object, out: bytearray, depth: int) -> None:
    """Subclasses of the plain types, and the rarer plain types."""
    if isinstance(value, bool):
        out += b"T" if value else b"F"
    elif isinstance(value, int):
        _put_int(int(value), out)
    elif isinstance(value, float):
        out += b"f"
        out += _F64.pack(value)
    elif isinstance(value, complex):
        out += b"c"
        out += _C128.pack(value.real, value.imag)
    elif isinstance(value, str):
        _put(str(value), out, depth)
    elif isinstance(value, (bytes, bytearray)):
        out += b"b" if isinstance(value, bytes) else b"a"
        out += _U32.pack(len(value))
        out += value
    else:
        for base, tag in _CONTAINERS.items():
            if isinstance(value, base):
                _put_container(tag, value, out, depth)
                return
        raise TypeError(
            f"cannot send a {type(value).__module__}.{type(value).__qualname__} "
            "between the host and a sandbox: only plain data crosses (None, bool, "
            "int, float, complex, str, bytes, and lists, tuples, dicts and sets of "
            "them)"
        )


def loads(data: bytes) -> object:
    """The value ``data`` holds; :class:`WireError` if it holds none."""
    data = bytes(data)
    try:
        value, end = _get(data, 0, 0)
    except WireError:
        raise
    except (
        IndexError,
        struct.error,
        UnicodeDecodeError,
        OverflowError,
        RecursionError,
    ) as error:
        raise WireError(f"malformed data: {error}") from None
    except TypeError as error:  # an unhashable key or set member
        raise WireError(f"malformed data: {error}") from None
    if end != len(data):
        raise WireError(f"malformed data: {len(data) - end} bytes after the value")
    return value


def _length(data: bytes, pos: int, unit: int) -> tuple[int, int]:
    """A length at ``pos``, checked against the bytes left (each item takes
    at least ``unit`` bytes)."""
    (length,) = _U32.unpack_from(data, pos)
    pos += 4
    if length * unit > len(data) - pos:
        raise WireError(f"malformed data: a length of {length} past the end")
    return length, pos


def _get(data: bytes, pos: int, depth: int) -> tuple[object, int]:
    tag = data[pos]
    pos += 1
    if tag == 0x69:  # i
        return _I64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x73:  # s
        size, pos = _length(data, pos, 1)
        return data[pos : pos + size].decode("utf-8", "surrogatepass"), pos + size
    if tag == 0x66:  # f
        return _F64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x4E:  # N
        return None, pos
    if tag == 0x54:  # T
        return True, pos
    if tag == 0x46:  # F
        return False, pos
    if tag in (0x62, 0x61):  # b, a
        size, pos = _length(data, pos, 1)
        chunk = data[pos : pos + size]
        return (chunk if tag == 0x62 else bytearray(chunk)), pos + size
    if tag == 0x49:  # I
        size, pos = _length(data, pos, 1)
        return int.from_bytes(data[pos : pos + size], "little", signed=True), pos + size
    if tag == 0x63:  # c
        real, imag = _C128.unpack_from(data, pos)
        return complex(real, imag), pos + 16
    if tag in _MAKERS:
        if depth >= MAX_DEPTH:
            raise WireError(f"malformed data: nested more than {MAX_DEPTH} deep")
        return _get_container(tag, data, pos, depth + 1)
    raise WireError(f"malformed data: unknown tag {tag:#04x} at byte {pos - 1}")


_MAKERS = {0x6C: list, 0x74: tuple, 0x53: set, 0x7A: frozenset, 0x64: dict}


def _get_container(tag: int, data: bytes, pos: int, depth: int) -> tuple[object, int]:
    count, pos = _length(data, pos, 2 if tag == 0x64 else 1)
    items = []
    for _ in range(count * 2 if tag == 0x64 else count):
        item, pos = _get(data, pos, depth)
        items.append(item)
    if tag == 0x64:
        pairs = iter(items)
        return dict(zip(pairs, pairs, strict=True)), pos
    return _MAKERS[tag](items), pos
