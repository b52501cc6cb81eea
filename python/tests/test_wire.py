"""The host's native wire codec and the sandbox's Python one agree, byte
for byte, and both refuse what is not plain data."""

from __future__ import annotations

import collections
import enum
import marshal
import math
import pickle

import pytest
from wasmpool import WireError, _native
from wasmpool.guest import wasmpool_wire as python_wire


class Color(enum.IntEnum):
    RED = 1


Pair = collections.namedtuple("Pair", "a b")

VALUES = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**200) + 7,
    1.5,
    -0.0,
    math.inf,
    1 + 2j,
    "",
    "é\U0001f600",
    "lone \udcff surrogate",
    b"",
    b"\x00\xff",
    bytearray(b"ab"),
    [],
    (),
    {},
    set(),
    frozenset(),
    [1, [2, [3, (4, {5: {6}})]]],
    {"a": 1, (1, 2): [None], 3.5: frozenset({"x"})},
    Color.RED,
    Pair(1, "b"),
    collections.OrderedDict(a=1),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_both_codecs_write_the_same_bytes_and_read_them_back(value):
    native = _native.wire_dumps(value)
    assert native == python_wire.dumps(value)
    for loads in (_native.wire_loads, python_wire.loads):
        back = loads(native)
        assert back == value and type(back) in (type(value), int, tuple, dict)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_what_is_packed_per_call_comes_back_as_it_was_both_ways(value):
    """``pack``: marshal where it brings the value back as it is, else the
    wire format; the native and the sandbox's side read each other."""
    for packed in (_native.pack(value), python_wire.pack(value)):
        assert packed[:1] == (b"m" if python_wire._marshals(value, 0) else b"w")
        for unpack in (_native.unpack, python_wire.unpack):
            back = unpack(packed)
            assert back == value and type(back) in (type(value), int, tuple, dict)


def test_exact_plain_types_go_by_marshal_and_the_rest_by_the_wire_format():
    plain = [1, 2**70, -(2**70), "é\udcff", b"\x00", 1.5, 2j, None, True, {1: {2}}]
    assert _native.pack(plain)[:1] == python_wire.pack(plain)[:1] == b"m"
    for value in (bytearray(b"a"), [Color.RED], (Pair(1, 2),), {"a": [bytearray()]}):
        assert _native.pack(value)[:1] == python_wire.pack(value)[:1] == b"w"
        assert type(_native.unpack(_native.pack(value))) is type(value)


@pytest.mark.parametrize(
    "value", [0, 1, -1, 2**31 - 1, -(2**31), 2**31, 2**63, -(2**63) - 1, 7**300]
)
def test_ints_at_every_size_cross_marshal_exactly(value):
    assert _native.unpack(_native.pack(value)) == value
    assert _native.unpack(b"m" + marshal.dumps(value, 2)) == value
    assert marshal.loads(_native.pack(value)[1:]) == value


def test_the_host_refuses_in_marshal_what_is_not_plain_data():
    code = compile("import os; os.mkdir('x')", "<payload>", "exec")
    shared = [1]
    for payload in (
        marshal.dumps(code, 2),
        marshal.dumps([1, code], 2),
        marshal.dumps(..., 2),
        marshal.dumps(StopIteration, 2),
        marshal.dumps([shared, shared], 4),  # references: version 2 has none
        b"l\x01\x00\x00\x00\x00\x00",  # an unnormalised int
        b"l\x01\x00\x00\x00\xff\xff",  # a digit past 15 bits
        b"[\xff\xff\xff\x7f",  # a length past the end
        b"[\xff\xff\xff\xff",  # a negative length
        b"{N",  # a dict without its end
        b"<\x01\x00\x00\x00[\x00\x00\x00\x00",  # an unhashable member
        b"[\x01\x00\x00\x00" * 10_000 + b"N",
        b"NN",
    ):
        with pytest.raises(ValueError, match="malformed"):
            _native.unpack(b"m" + payload)
    with pytest.raises(ValueError, match="format byte"):
        _native.unpack(b"?" + marshal.dumps(1, 2))


def test_a_nan_survives():
    assert math.isnan(_native.wire_loads(python_wire.dumps(math.nan)))


@pytest.mark.parametrize("value", [object(), [1, object()], {1: print}, Color])
def test_what_is_not_plain_data_is_a_type_error_on_both(value):
    with pytest.raises(TypeError, match="cannot send"):
        _native.wire_dumps(value)
    with pytest.raises(TypeError, match="cannot send"):
        python_wire.dumps(value)


def test_nesting_is_bounded_both_ways():
    deep: list = []
    for _ in range(python_wire.MAX_DEPTH + 5):
        deep = [deep]
    for dumps in (_native.wire_dumps, python_wire.dumps):
        with pytest.raises(TypeError, match="deep"):
            dumps(deep)
    nested = b"l\x01\x00\x00\x00" * 10_000 + b"N"
    with pytest.raises(ValueError, match="deep"):
        _native.wire_loads(nested)
    with pytest.raises(WireError, match="deep"):
        python_wire.loads(nested)


MALFORMED = [
    b"",
    b"?",
    b"i\x01",
    b"s\xff\xff\xff\xff",
    b"l\xff\xff\xff\xff",
    b"d\x01\x00\x00\x00l\x00\x00\x00\x00N",
    b"S\x01\x00\x00\x00l\x00\x00\x00\x00",
    b"s\x02\x00\x00\x00\xff\xfe",
    b"NN",
    pickle.dumps([1, 2]),
]


@pytest.mark.parametrize("data", MALFORMED, ids=repr)
def test_malformed_bytes_are_refused_by_both(data):
    with pytest.raises(ValueError, match="malformed"):
        _native.wire_loads(data)
    with pytest.raises(WireError, match="malformed"):
        python_wire.loads(data)
