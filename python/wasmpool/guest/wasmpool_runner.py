"""The task every ``WasmPoolExecutor`` sandbox runs: it rebuilds the shipped
function from its source and calls it.

Built by ``wasmpool.python.build`` into a component with the whole standard
library inside; the host imports nothing from here but the format version.

An input is ``MAGIC`` and then, as ``wasmpool_wire.pack`` writes it,
``(bundle, args, kwargs)``: ``bundle`` is the function as :mod:`wasmpool._ship` packs it
(bytes, kept packed so that a reused instance rebuilds a function once),
``args`` a list of argument tuples, one per call, ``kwargs`` a list of
keyword dicts beside it or ``None``. The output is ``(values, errors)``,
packed the same way:
the return values in order (``None`` where a call failed) and a dict from
the index of each failed call to ``(module, qualname, args, text,
traceback)``.

An exception that is not an ``Exception`` (``SystemExit``, a
``MemoryError`` under the memory cap) ends the whole task: the host then
reports it with its own kind (exit code, memory limit).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import linecache
import traceback

import wasmpool_wire as wire
from wasmpool_task import task

MAGIC = b"WPX2"

# Functions already rebuilt in this instance, by their packed bundle.
_built: dict[bytes, object] = {}


@task(raw=True)
def run(input: bytes) -> bytes:
    if input[: len(MAGIC)] != MAGIC:
        raise ValueError("this input was not made by a WasmPoolExecutor")
    bundle, calls, keywords = wire.unpack(input[len(MAGIC) :])
    function = _built.get(bundle)
    if function is None:
        function = _built[bundle] = _Builder(wire.loads(bundle)).function()
    values = []
    errors = {}
    for index, args in enumerate(calls):
        try:
            if keywords is None:
                values.append(function(*args))
            else:
                values.append(function(*args, **keywords[index]))
        except MemoryError:
            raise
        except Exception as error:
            values.append(None)
            errors[index] = _describe(error)
    try:
        return wire.pack((values, errors))
    except TypeError:
        pass
    # Some value cannot cross: that call fails with the TypeError.
    for index, value in enumerate(values):
        try:
            wire.dumps(value)
        except TypeError as error:
            values[index] = None
            errors[index] = _describe(error)
    return wire.pack((values, errors))


def _describe(error: Exception) -> tuple:
    kind = type(error)
    try:
        args = wire.dumps(error.args)
    except TypeError:
        args = None
    frames = error.__traceback__
    # The runner's own frame says nothing about the failure.
    if frames is not None and frames.tb_frame.f_globals.get("__name__") == __name__:
        frames = frames.tb_next
    text = "".join(traceback.format_exception_only(kind, error)).strip()
    tb = "".join(traceback.format_exception(kind, error, frames))
    return (kind.__module__, kind.__qualname__, args, text, tb)


class _Builder:
    """Makes the objects a bundle describes, each once."""

    def __init__(self, bundle: tuple) -> None:
        version, self.root, spaces = bundle
        if version != 1:
            raise ValueError(f"bundle version {version} is not 1")
        self.spaces = spaces
        self.namespaces = {
            name: {"__name__": name, "__builtins__": builtins} for name in spaces
        }

    def function(self) -> object:
        # Data, modules and importable objects first, then code in the
        # order the host packed it: what a class needs is defined before it.
        for later in (False, True):
            for space, names in self.spaces.items():
                for name, item in names.items():
                    if (item[0] == "code") == later:
                        self.namespaces[space][name] = self.make(item, space, name)
        return self.make(self.root, None, None)

    def make(self, item: tuple, space: str | None, name: str | None) -> object:
        tag = item[0]
        if tag == "value":
            return item[1]
        if tag == "module":
            return importlib.import_module(item[1])
        if tag == "attr":
            found: object = importlib.import_module(item[1])
            for part in item[2].split("."):
                found = getattr(found, part)
            return found
        if tag == "builtin":
            return getattr(builtins, item[1])
        if tag == "partial":
            _, func, args, keywords = item
            return functools.partial(
                self.make(func, None, None),
                *(self.make(arg, None, None) for arg in args),
                **{key: self.make(arg, None, None) for key, arg in keywords.items()},
            )
        if tag == "ref":
            return self.namespaces[item[1]][item[2]]
        if tag == "code":
            return self.code(item, bound=space is not None and name == item[6])
        raise ValueError(f"unknown item {tag!r}")

    def code(self, item: tuple, bound: bool) -> object:
        _, kind, space, source, filename, line, name, qualname, freevars = item
        namespace = self.namespaces[space]
        lines = source.splitlines(keepends=True)
        # Tracebacks show the shipped lines where they came from.
        known = linecache.cache.get(filename, (0, None, [], filename))[2]
        padded = list(known) + [""] * max(0, line + len(lines) - len(known))
        start = max(line - 1, 0)
        padded[start : start + len(lines)] = lines
        linecache.cache[filename] = (len(source), None, padded, filename)
        if not freevars:
            # Compiled from its text, put at its lines: no syntax tree to
            # build in Python, which a fresh interpreter pays per call.
            text = "\n" * max(line - 1, 0) + source
            if kind == "lambda":
                made = eval(compile(text, filename, "eval"), namespace)
            elif bound:
                exec(compile(text, filename, "exec"), namespace)
                made = namespace[name]
            else:
                scope: dict = {}
                exec(compile(text, filename, "exec"), namespace, scope)
                made = scope[name]
            return _named(made, qualname)
        if kind == "lambda":
            node: ast.AST = ast.parse(source, filename, "eval").body
        else:
            node = ast.parse(source, filename).body[0]
            if isinstance(node, ast.If):  # an indented definition, one line below
                node = node.body[0]
        ast.increment_lineno(node, line - 1)
        values = [self.make(free, None, None) for _, free in freevars]
        # A function around the code takes the closure's values as its
        # parameters, so the code sees them as the free variables it had.
        body = (
            [ast.Return(node)]
            if kind == "lambda"
            else [node, ast.Return(ast.Name(name))]
        )
        maker = ast.FunctionDef(
            name="__wasmpool_make",
            args=ast.arguments(args=[ast.arg(free) for free, _ in freevars]),
            body=body,
            decorator_list=[],
        )
        ast.copy_location(maker, node)
        ast.fix_missing_locations(maker)
        scope = {}
        exec(compile(ast.Module([maker], []), filename, "exec"), namespace, scope)
        return _named(scope["__wasmpool_make"](*values), qualname)


def _named(made: object, qualname: str) -> object:
    try:
        made.__qualname__ = qualname  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass
    return made
