"""Bytes from a sandbox never make the host run code.

The function a sandbox runs shares its interpreter with the runner, so a
hostile one can make the runner send anything back. These tests do just
that, with payloads that would run code on the host if they were
unpickled or if the class they name were called.
"""

from __future__ import annotations

import os
import pickle

import pytest
import wasmpool


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("format", [b"m", b"w", b""])
def test_a_pickle_sent_back_is_refused_and_never_run(executor, tmp_path, format):
    marker = str(tmp_path / "pickle-ran")
    payload = format + pickle.dumps(_Payload(marker))

    def hostile(_):
        import wasmpool_wire

        wasmpool_wire.pack = lambda value: payload
        return None

    with pytest.raises(wasmpool.GuestError, match="not a result"):
        executor.submit(hostile, 0).result(timeout=60)
    assert not os.path.exists(marker)


def test_code_sent_back_in_marshal_is_refused_and_never_run(executor, tmp_path):
    marker = str(tmp_path / "code-ran")

    def hostile(_):
        import marshal

        import wasmpool_wire

        code = compile(f"import os; os.mkdir({marker!r})", "<payload>", "exec")
        payload = b"m" + marshal.dumps(([code], {}), 2)
        wasmpool_wire.pack = lambda value: payload
        return None

    with pytest.raises(wasmpool.GuestError, match="not a result.*code"):
        executor.submit(hostile, 0).result(timeout=60)
    assert not os.path.exists(marker)


def test_an_error_naming_a_callable_is_not_called(executor, tmp_path):
    marker = str(tmp_path / "call-ran")

    def hostile(_):
        import wasmpool_runner
        import wasmpool_wire

        wasmpool_runner._describe = lambda error: (
            "os",
            "mkdir",
            wasmpool_wire.dumps((marker,)),
            "OSError: fake",
            "",
        )
        raise OSError("fake")

    with pytest.raises(wasmpool.RemoteException) as raised:
        executor.submit(hostile, 0).result(timeout=60)
    assert raised.value.type_name == "os.mkdir"
    assert not os.path.exists(marker)


def test_malformed_bytes_are_a_wire_error():
    from wasmpool.guest import wasmpool_wire as wire

    for bad in [
        b"",
        b"l\xff\xff\xff\xff",
        b"d\x01\x00\x00\x00l\x00\x00\x00\x00N",
        b"N!",
    ]:
        with pytest.raises(wasmpool.WireError):
            wire.loads(bad)
    nested = b"l\x01\x00\x00\x00" * 10_000 + b"N"
    with pytest.raises(wasmpool.WireError, match="deep"):
        wire.loads(nested)


@pytest.mark.parametrize(
    "sent",
    [
        ({0: 5}, {}),  # values not in a list
        ([1, 2], {}),  # two values for one call
        ([None], {7: ("builtins", "ValueError", None, "ValueError", "")}),
        ([None], {0: "not a description"}),
    ],
    ids=["dict", "two", "index", "description"],
)
def test_a_result_of_the_wrong_shape_fails_its_call_alone(executor, sent):
    def hostile(_):
        import marshal

        import wasmpool_wire

        payload = b"m" + marshal.dumps(sent, 2)
        wasmpool_wire.pack = lambda value: payload
        return None

    with pytest.raises(wasmpool.GuestError, match="not a result"):
        executor.submit(hostile, 0).result(timeout=60)
    assert executor.submit(abs, -4).result(timeout=60) == 4
