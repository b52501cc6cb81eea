"""Packs a Python function, by source, for a sandbox to rebuild.

A sandbox shares no memory and no modules with the host, so a function
cannot travel by reference, as ``pickle`` sends it: it travels as its source
and what that source refers to:

- modules by name (the sandbox holds Python's standard library);
- functions and classes of the standard library by name;
- other functions and classes (of ``__main__``, a notebook, the user's own
  modules) by source, with what *they* refer to, in turn;
- plain data (what :mod:`wasmpool_wire` carries) by value, as it is at
  submission.

Globals go into one namespace per module of origin, so functions of the
same module still share their globals in the sandbox; a closure's values
are handed to the rebuilt code as its free variables. Anything else (a
socket, an open file, a function of a C extension the sandbox lacks) raises
``TypeError`` naming the object and where it was found.
"""

from __future__ import annotations

import ast
import builtins
import dis
import functools
import linecache
import sys
import types
from typing import Any

from ._native import wire_dumps

Item = tuple

#: Modules the sandbox can import: its standard library.
_STDLIB = frozenset(sys.stdlib_module_names) - {
    "tkinter",
    "turtle",
    "idlelib",
    "ensurepip",
    "venv",
}

_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


def pack(function: Any) -> bytes:
    """The bundle of ``function``: what a sandbox needs to rebuild it.

    A bundle is kept while every global and closure variable it read is
    still bound to the same object and all the data it took is immutable;
    otherwise the function is packed again, so data travels as it is at
    submission.
    """
    try:
        kept = _packed.get(function)
    except TypeError:  # unhashable: never kept
        kept = None
    if kept is not None and all(
        _read(where, name) is value for where, name, value in kept[1]
    ):
        return kept[0]
    packer = _Packer()
    root = packer.item(function, f"{_name(function)}")
    bundle = wire_dumps((1, root, packer.spaces))
    if packer.immutable:
        if len(_packed) >= _KEPT:
            _packed.clear()
        try:
            _packed[function] = (bundle, packer.reads)
        except TypeError:
            pass
    return bundle


# Bundles by function (functions hash by identity). A plain dict: a weak
# one cost more per lookup than packing saves; it is emptied when full.
_packed: dict[Any, tuple[bytes, list]] = {}
_KEPT = 256
_UNBOUND = object()


def _read(where: Any, name: str | None) -> Any:
    """What a namespace binds to ``name`` now, or a cell holds."""
    if name is None:
        try:
            return where.cell_contents
        except ValueError:
            return _UNBOUND
    return where.get(name, _UNBOUND)


def _is_immutable(value: Any) -> bool:
    if type(value) in (tuple, frozenset):
        return all(_is_immutable(item) for item in value)
    return value is None or type(value) in (bool, int, float, complex, str, bytes)


def _name(value: Any) -> str:
    return (
        getattr(value, "__qualname__", None)
        or getattr(value, "__name__", None)
        or repr(value)
    )


def _in_sandbox(module: str | None) -> bool:
    return module is not None and module.partition(".")[0] in _STDLIB


def _importable(value: Any) -> tuple[str, str] | None:
    """(module, qualname) if the sandbox can import ``value`` by name."""
    module = getattr(value, "__module__", None) or getattr(
        getattr(value, "__objclass__", None), "__module__", None
    )
    qualname = getattr(value, "__qualname__", None)
    if not _in_sandbox(module) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found: Any = sys.modules.get(module)  # type: ignore[arg-type]
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module, qualname) if found is value else None  # type: ignore[return-value]


class _Packer:
    def __init__(self) -> None:
        # name of a module of origin -> global name -> item, in the order
        # the sandbox must make them (what one needs comes first).
        self.spaces: dict[str, dict[str, Item]] = {}
        self.memo: dict[int, Item] = {}
        self.busy: set[int] = set()
        self.keep: list[Any] = []
        # What was read, to tell later whether the bundle still holds:
        # (namespace, name, value) or (cell, None, value).
        self.reads: list[tuple[Any, str | None, Any]] = []
        # Whether all the data taken by value is immutable.
        self.immutable = True

    def item(self, value: Any, where: str) -> Item:
        if value is None or type(value) in (bool, int, float, str, bytes):
            return ("value", value)
        known = self.memo.get(id(value))
        if known is not None:
            return known
        made = self.make(value, where)
        self.memo[id(value)] = made
        self.keep.append(value)
        return made

    def make(self, value: Any, where: str) -> Item:
        if isinstance(value, types.ModuleType):
            if not _in_sandbox(value.__name__):
                raise TypeError(
                    f"cannot send {where}: it is the module {value.__name__!r}, "
                    "which the "
                    "sandbox lacks (it holds Python's standard library only); import "
                    "what the function needs from the standard library, or pass data"
                )
            return ("module", value.__name__)
        if callable(value):
            importable = _importable(value)
            if importable is not None:
                return ("attr", *importable)
        if isinstance(value, (types.BuiltinFunctionType, types.FunctionType, type)):
            if isinstance(value, types.BuiltinFunctionType):
                if getattr(builtins, value.__name__, None) is value:
                    return ("builtin", value.__name__)
                raise TypeError(
                    f"cannot send {where}: {_name(value)} of "
                    f"{getattr(value, '__module__', None)!r} is compiled code, "
                    "not Python, "
                    "and the sandbox lacks its module"
                )
            return self.code(value, where)
        if type(value) is functools.partial:
            return (
                "partial",
                self.item(value.func, f"{where}'s function"),
                tuple(self.item(arg, f"{where}'s argument") for arg in value.args),
                {
                    key: self.item(arg, f"{where}'s argument {key!r}")
                    for key, arg in value.keywords.items()
                },
            )
        try:
            wire_dumps(value)
        except TypeError:
            raise TypeError(
                f"cannot send {where}: a "
                f"{type(value).__module__}.{type(value).__qualname__} "
                "object is neither plain data nor code the sandbox can rebuild"
            ) from None
        self.immutable = self.immutable and _is_immutable(value)
        return ("value", value)

    def code(self, value: Any, where: str) -> Item:
        if id(value) in self.busy:
            raise TypeError(f"cannot send {where}: its closure refers back to itself")
        self.busy.add(id(value))
        try:
            if isinstance(value, type):
                return self.klass(value, where)
            return self.func(value, where)
        finally:
            self.busy.discard(id(value))

    def func(self, function: types.FunctionType, where: str) -> Item:
        code = function.__code__
        source = _source(function, code, None)
        space = function.__module__ or "__main__"
        names = _globals_of(code) | source.outer_names
        bound = _bound(function, function.__globals__)
        ref: Item = ("ref", space, function.__name__)
        if bound:
            self.memo[id(function)] = ref
        self.globals_(function.__globals__, space, names, function.__qualname__)
        freevars = tuple(
            (name, self.closure(function, name, cell, where))
            for name, cell in zip(
                code.co_freevars, function.__closure__ or (), strict=True
            )
        )
        kind = "lambda" if code.co_name == "<lambda>" else "def"
        made = ("code", kind, space, source.text, source.filename, source.line)
        made += (function.__name__, function.__qualname__, freevars)
        if bound:
            self.spaces.setdefault(space, {})[function.__name__] = made
            return ref
        return made

    def klass(self, cls: type, where: str) -> Item:
        space = cls.__module__
        module = sys.modules.get(space)
        namespace = vars(module) if module is not None else {}
        methods = [
            getattr(member, "__func__", member)
            for member in vars(cls).values()
            if isinstance(getattr(member, "__func__", member), types.FunctionType)
        ]
        source = _source(cls, None, methods)
        names = set(source.outer_names)
        for method in methods:
            names |= _globals_of(method.__code__)
        bound = _bound(cls, namespace)
        ref: Item = ("ref", space, cls.__name__)
        if bound:
            self.memo[id(cls)] = ref
        self.globals_(namespace, space, names, cls.__qualname__)
        made = ("code", "class", space, source.text, source.filename, source.line)
        made += (cls.__name__, cls.__qualname__, ())
        if bound:
            self.spaces.setdefault(space, {})[cls.__name__] = made
            return ref
        return made

    def globals_(
        self, namespace: dict, space: str, names: set[str], owner: str
    ) -> None:
        slots = self.spaces.setdefault(space, {})
        for name in sorted(names):
            if name in slots:
                continue
            if name not in namespace:
                self.reads.append((namespace, name, _UNBOUND))
                continue
            value = namespace[name]
            self.reads.append((namespace, name, value))
            item = self.item(value, f"{owner}'s global {name!r}")
            if name not in slots and item != ("ref", space, name):
                slots[name] = item

    def closure(
        self, function: types.FunctionType, name: str, cell: Any, where: str
    ) -> Item:
        try:
            value = cell.cell_contents
        except ValueError:
            raise TypeError(
                f"cannot send {where}: {function.__qualname__} uses {name!r} from its "
                "enclosing function before it is assigned"
            ) from None
        self.reads.append((cell, None, value))
        if value is function:
            return ("value", None)  # the rebuilt def binds its own name
        if name == "__class__":
            return ("value", None)
        return self.item(value, f"{function.__qualname__}'s variable {name!r}")


def _bound(value: Any, namespace: dict) -> bool:
    """Whether ``value`` is bound to its own name in its module."""
    return (
        value.__qualname__ == value.__name__ and namespace.get(value.__name__) is value
    )


def _globals_of(code: types.CodeType) -> set[str]:
    """The global names ``code`` and the code nested in it use."""
    names = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in _LOADS:
            names.add(instruction.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals_of(const)
    return names


class _Source:
    """Where a function or class is written, and the names its definition
    itself evaluates (decorators, defaults, base classes)."""

    def __init__(
        self, text: str, filename: str, line: int, outer_names: set[str]
    ) -> None:
        self.text = text
        self.filename = filename
        self.line = line
        self.outer_names = outer_names


@functools.lru_cache(maxsize=64)
def _tree(filename: str, text: str) -> ast.Module:
    return ast.parse(text, filename)


def _lines(filename: str, namespace: dict | None) -> list[str]:
    lines = linecache.getlines(filename, namespace)
    if not lines:
        raise TypeError(
            f"the source of this function is not available ({filename}): define it "
            "in a file, a notebook cell or a module, where its source can be read"
        )
    return lines


def _source(value: Any, code: types.CodeType | None, methods: list | None) -> _Source:
    if code is not None:
        filename = code.co_filename
        lines = _lines(filename, getattr(value, "__globals__", None))
    else:
        filename, lines = _class_file(value, methods or [])
    text = "".join(lines)
    try:
        tree = _tree(filename, text)
    except SyntaxError:
        raise TypeError(
            f"cannot send {_name(value)}: {filename} does not parse as Python"
        ) from None
    node = _find(tree, value, code, methods, text)
    if node is None:
        raise TypeError(
            f"cannot send {_name(value)}: its definition is not in {filename} as it "
            "reads now (was the file changed after it was run?)"
        )
    outer = _outer_names(node)
    if isinstance(node, ast.Lambda):
        segment = ast.get_source_segment(text, node) or ""
        return _Source("(" + segment + ")", filename, node.lineno, outer)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])  # type: ignore[attr-defined]
    body = lines[first - 1 : node.end_lineno]
    indent = len(body[0]) - len(body[0].lstrip())
    if indent:
        # Indented code (a nested function) parses alone under a block of
        # its own, a line above it: its lines stay as they were written.
        return _Source("if 1:\n" + "".join(body), filename, first - 1, outer)
    return _Source("".join(body), filename, first, outer)


def _class_file(cls: type, methods: list) -> tuple[str, list[str]]:
    for method in methods:
        filename = method.__code__.co_filename
        lines = linecache.getlines(filename, method.__globals__)
        if lines:
            return filename, lines
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    if filename:
        return filename, _lines(filename, vars(module))
    # A class without methods in a notebook: look through the cells.
    for filename, entry in reversed(list(linecache.cache.items())):
        lines = entry[2]
        if f"class {cls.__name__}" in "".join(lines):
            return filename, lines
    raise TypeError(
        f"cannot send {cls.__qualname__}: its source is not available (defined "
        "where no file holds it)"
    )


def _find(
    tree: ast.Module,
    value: Any,
    code: types.CodeType | None,
    methods: list | None,
    text: str,
) -> ast.AST | None:
    if code is not None and code.co_name == "<lambda>":
        found = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno
        ]
        if len(found) > 1:
            found = [n for n in found if _same_lambda(n, code, text)] or found
        return found[0] if found else None
    if code is not None:
        for node in ast.walk(tree):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == code.co_name
            ):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if first == code.co_firstlineno:
                    return node
        return None
    lines = [m.__code__.co_firstlineno for m in methods or []]
    candidates = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef) and n.name == value.__name__
    ]
    for node in reversed(candidates):
        if not lines or any(
            node.lineno <= line <= (node.end_lineno or 0) for line in lines
        ):
            return node
    return None


def _same_lambda(node: ast.Lambda, code: types.CodeType, text: str) -> bool:
    segment = ast.get_source_segment(text, node)
    try:
        compiled = compile("(" + (segment or "") + ")", "<lambda>", "eval")
    except SyntaxError:
        return False
    inner = [c for c in compiled.co_consts if isinstance(c, types.CodeType)]
    if not inner:
        return False
    # Compiled alone, the lambda's free variables read as globals.
    alone = inner[0]
    return (
        alone.co_varnames == code.co_varnames
        and set(alone.co_names) == set(code.co_names) | set(code.co_freevars)
        and alone.co_consts == code.co_consts
    )


def _outer_names(node: ast.AST) -> set[str]:
    """Names a definition evaluates where it stands: decorators, defaults,
    base classes and a class body's own statements (not its methods')."""
    if isinstance(node, ast.Lambda):
        parts: list[ast.AST] = [
            *node.args.defaults,
            *filter(None, node.args.kw_defaults),
        ]
    elif isinstance(node, ast.ClassDef):
        parts = [*node.decorator_list, *node.bases, *node.keywords]
        parts += [
            s
            for s in node.body
            if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        for method in node.body:
            if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                parts += [
                    *method.decorator_list,
                    *method.args.defaults,
                    *filter(None, method.args.kw_defaults),
                ]
    else:
        args = node.args  # type: ignore[attr-defined]
        parts = [*node.decorator_list, *args.defaults, *filter(None, args.kw_defaults)]  # type: ignore[attr-defined]
    return {
        n.id
        for part in parts
        for n in ast.walk(part)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
