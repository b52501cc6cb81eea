"""The host's native wire codec and the sandbox's Python one agree, byte
for byte, and both refuse what is not plain data."""

from __future__ import annotations

import collections
import enum
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
