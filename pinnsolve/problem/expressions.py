"""Safe math expressions from problem files, compiled to torch functions.

Users write formulas in TOML (``value = "sin(pi*x) * exp(-lam*t)"``). Problem files are data and
may come from anyone, so a formula must never reach ``eval``/``exec``/``compile``: the text is
parsed with :func:`ast.parse` and the tree is checked against a strict whitelist, then turned into
a tree of small closures that call torch. Nothing is ever executed while parsing, and anything
outside the whitelist is rejected with a one-line :class:`ExpressionError` that says where the
formula came from, which construct is wrong, at which column, and what is allowed.

The grammar: int/float literals (``2``, ``1e-3``), the names the caller allows (coordinates and
parameters), the constants ``pi`` and ``e``, binary ``+ - * / **``, ``^`` as a synonym of ``**``,
unary ``+ -``, parentheses, and calls by plain name to the functions in :data:`FUNCTION_NAMES`.

Decisions worth knowing:

* ``^`` is power with the precedence of ``**`` (``2*x^2 + 1`` means ``2*(x**2) + 1``, and
  ``-x^2`` means ``-(x^2)``, as in Python and in math). It is rewritten to ``**`` before parsing;
  mapping Python's ``BitXor`` node instead would give ``^`` the precedence of XOR, below ``+``.
* Arithmetic is always torch arithmetic, also for plain floats (those are computed as float64
  0-d tensors), so ``1/0`` is ``inf``, ``log(-1)`` and ``(-8)^(1/3)`` are ``nan``, and ``9^9^9``
  is ``inf`` -- never a Python ``ZeroDivisionError``, ``OverflowError``, a complex number or a
  huge-integer computation that hangs. Literals are converted to float when parsed.
* Subexpressions without free names are folded to one float when parsed (``2*pi*x`` costs one
  multiplication per call). Folding uses the same float64 torch arithmetic, so it cannot hang. A
  folded value may be ``inf``/``nan``; callers that need a finite number check it themselves.
* Literals must be finite: ``1e999`` is an error, unlike ``1e308*10`` which folds to ``inf``.
* The caller's names may not be ``pi``, ``e`` or a function name (:data:`RESERVED_NAMES`): a
  parameter that silently shadowed ``e`` would change the meaning of every formula using it.
* Chains of ``+ -`` and of ``* /`` are flattened, so a long sum is not "deep"; the nesting limit
  (:data:`MAX_DEPTH`) counts levels of the tree (powers, signs, calls, a sum inside a product),
  not redundant parentheses, which the parser drops.
* ``heaviside(x)`` is 0 below zero, 1 above and 1/2 at zero; like ``sign`` its gradient is 0.

One module (about 590 lines) on purpose: the whitelist grammar, its parser and its evaluator
change together; a rule split from its check is how a whitelist leaks.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import torch
from torch import Tensor

from ..errors import PinnsolveError

MAX_LENGTH = 2000
"""Longest accepted expression text, in characters; a real formula is far shorter."""

MAX_DEPTH = 60
"""Deepest accepted nesting; keeps parsing and evaluation far from Python's recursion limit."""

CONSTANTS: Mapping[str, float] = MappingProxyType({"pi": math.pi, "e": math.e})
"""Named constants every expression may use."""

Value: TypeAlias = Tensor | float
Env: TypeAlias = Mapping[str, Tensor | float]
_Closure: TypeAlias = Callable[[Env], Value]
_Node: TypeAlias = float | _Closure  # a folded constant, or a closure over the environment

_F64 = torch.float64
_NO_NAMES: Env = MappingProxyType({})


class ExpressionError(PinnsolveError):
    """A formula in a problem file is not a valid expression, or cannot be evaluated.

    ``str(err)`` is ``"<where>: <message>"`` on one line (just the message if ``where`` is empty),
    so the CLI can print it as it is.
    """

    def __init__(self, message: str, *, where: str = ""):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def _heaviside(x: Tensor) -> Tensor:
    """Unit step with ``H(0) = 1/2``; its derivative is zero wherever it is defined."""
    return (torch.sign(x) + 1) * 0.5


# name -> (torch function, number of arguments, how to call it)
_FUNCTIONS: dict[str, tuple[Callable[..., Tensor], int, str]] = {
    "sin": (torch.sin, 1, "sin(x)"),
    "cos": (torch.cos, 1, "cos(x)"),
    "tan": (torch.tan, 1, "tan(x)"),
    "asin": (torch.asin, 1, "asin(x)"),
    "acos": (torch.acos, 1, "acos(x)"),
    "atan": (torch.atan, 1, "atan(x)"),
    "atan2": (torch.atan2, 2, "atan2(y, x)"),
    "sinh": (torch.sinh, 1, "sinh(x)"),
    "cosh": (torch.cosh, 1, "cosh(x)"),
    "tanh": (torch.tanh, 1, "tanh(x)"),
    "exp": (torch.exp, 1, "exp(x)"),
    "log": (torch.log, 1, "log(x)"),
    "log10": (torch.log10, 1, "log10(x)"),
    "sqrt": (torch.sqrt, 1, "sqrt(x)"),
    "abs": (torch.abs, 1, "abs(x)"),
    "sign": (torch.sign, 1, "sign(x)"),
    "heaviside": (_heaviside, 1, "heaviside(x)"),
    "min": (torch.minimum, 2, "min(a, b)"),
    "max": (torch.maximum, 2, "max(a, b)"),
}

FUNCTION_NAMES: tuple[str, ...] = tuple(_FUNCTIONS)
"""The functions an expression may call, by plain name."""

RESERVED_NAMES: frozenset[str] = frozenset(CONSTANTS) | frozenset(_FUNCTIONS)
"""Names a caller may not offer as coordinates or parameters."""

# Names people reach for that difflib would not match to ours.
_HINTS = {
    "ln": "did you mean log?",
    "sgn": "did you mean sign?",
    "fabs": "did you mean abs?",
    "pow": "write x**y or x^y",
    "step": "did you mean heaviside?",
    "inf": "numbers must be finite",
    "nan": "numbers must be finite",
}

_OPERATORS = "+ - * / ** ^"

_SCALAR_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}

_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Not: "not",
    ast.Invert: "~",
}

_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Slice: "slicing",
    ast.Lambda: "lambda",
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment ':='",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.Starred: "'*' unpacking",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}


def _scalar(fn: Callable[..., Tensor], *args: Any) -> float:
    """``fn`` on plain numbers, with float64 torch semantics (``inf``/``nan``, never a raise)."""
    return fn(*(torch.tensor(a, dtype=_F64) for a in args)).item()


def _like(value: Any, ref: Tensor) -> Tensor:
    """A plain number as a 0-d tensor that torch functions accept next to ``ref``."""
    return torch.tensor(value, dtype=torch.result_type(ref, value), device=ref.device)


def _arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Value, Value], Value]:
    """A binary operator that keeps tensors as tensors and plain numbers as floats."""

    def apply(a: Value, b: Value) -> Value:
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return op(a, b)
        return _scalar(op, a, b)

    return apply


def _function(fn: Callable[..., Tensor], arity: int) -> Callable[..., Value]:
    """A whitelisted function that accepts tensors or plain numbers (torch wants tensors)."""
    if arity == 1:

        def apply1(a: Value) -> Value:
            return fn(a) if isinstance(a, Tensor) else _scalar(fn, a)

        return apply1

    def apply2(a: Value, b: Value) -> Value:
        if isinstance(a, Tensor):
            return fn(a, b if isinstance(b, Tensor) else _like(b, a))
        if isinstance(b, Tensor):
            return fn(_like(a, b), b)
        return _scalar(fn, a, b)

    return apply2


_ARITHMETIC = {kind: _arithmetic(op) for kind, op in _SCALAR_OPS.items()}
_CALLS = {name: _function(fn, arity) for name, (fn, arity, _) in _FUNCTIONS.items()}


def _as_closure(node: _Node) -> _Closure:
    if isinstance(node, float):
        return lambda env: node
    return node


def _binary(apply: Callable[[Value, Value], Value], left: _Node, right: _Node) -> _Node:
    if isinstance(left, float) and isinstance(right, float):
        return float(apply(left, right))
    f, g = _as_closure(left), _as_closure(right)
    return lambda env: apply(f(env), g(env))


def _chain(first: _Node, rest: list[tuple[Callable[[Value, Value], Value], _Node]]) -> _Node:
    """Left-to-right ``a op b op c ...``, folding the constant prefix, evaluated in a loop."""
    acc = first
    while rest and isinstance(acc, float) and isinstance(rest[0][1], float):
        apply, term = rest.pop(0)
        acc = _binary(apply, acc, term)
    if not rest:
        return acc
    if len(rest) == 1:
        return _binary(rest[0][0], acc, rest[0][1])
    head = _as_closure(acc)
    tail = [(apply, _as_closure(term)) for apply, term in rest]

    def chain(env: Env) -> Value:
        value = head(env)
        for apply, term in tail:
            value = apply(value, term(env))
        return value

    return chain


def _call(apply: Callable[..., Value], args: list[_Node]) -> _Node:
    if all(isinstance(a, float) for a in args):
        return float(apply(*args))
    if len(args) == 1:
        f = _as_closure(args[0])
        return lambda env: apply(f(env))
    f, g = (_as_closure(a) for a in args)
    return lambda env: apply(f(env), g(env))


def _negate(node: _Node) -> _Node:
    if isinstance(node, float):
        return -node
    return lambda env: -node(env)


def _lookup(name: str, where: str) -> _Closure:
    def lookup(env: Env) -> Value:
        try:
            return env[name]
        except KeyError:
            given = ", ".join(sorted(env)) or "none"
            message = f"no value given for {name!r} (given: {given})"
            raise ExpressionError(message, where=where) from None

    return lookup


class _Source:
    """The text as the parser sees it, and the way back to the user's line and column.

    Before parsing, surrounding whitespace is stripped (Python rejects a leading space as an
    indent) and every ``^`` becomes ``**``; positions in errors must still point into the text
    the user wrote.
    """

    def __init__(self, text: str):
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        stripped = text.strip()
        lead = text[: len(text) - len(text.lstrip())]
        self._line_shift = lead.count("\n")
        self._col_shift = len(lead) - (lead.rfind("\n") + 1)
        self._multiline = "\n" in stripped
        self._lines: list[str] = []
        self._maps: list[list[int]] = []  # per line: parsed char index -> user char index
        for line in stripped.split("\n"):
            index = [i for i, ch in enumerate(line) for _ in range(2 if ch == "^" else 1)]
            self._maps.append([*index, len(line)])
            self._lines.append(line.replace("^", "**"))
        self.code = "\n".join(self._lines)

    def position(self, lineno: int, char_offset: int) -> str:
        """'column C' (or 'line L, column C'), 1-based, for a 0-based char offset in the code."""
        line = min(max(lineno, 1), len(self._maps))
        mapping = self._maps[line - 1]
        column = mapping[min(max(char_offset, 0), len(mapping) - 1)] + 1
        if line == 1:
            column += self._col_shift
        if self._multiline:
            return f"line {line + self._line_shift}, column {column}"
        return f"column {column}"

    def node_position(self, node: ast.expr) -> str:
        """Where ``node`` starts; ``ast`` counts columns in UTF-8 bytes, users count characters."""
        encoded = self._lines[node.lineno - 1].encode()
        offset = len(encoded[: node.col_offset].decode(errors="replace"))
        return self.position(node.lineno, offset)

    def snippet(self, node: ast.expr) -> str:
        """The node's text, quoted, on one line and short enough for an error message."""
        text = ast.get_source_segment(self.code, node) or ""
        text = " ".join(text.split())
        if len(text) > 40:
            text = text[:37] + "..."
        return repr(text)


class _Compiler:
    """Checks a parsed tree against the whitelist and turns it into closures, in one pass."""

    def __init__(self, source: _Source, allowed: frozenset[str], where: str):
        self.source = source
        self.allowed = allowed
        self.where = where
        self.used: set[str] = set()

    def error(self, problem: str, node: ast.expr, hint: str = "") -> ExpressionError:
        message = f"{problem} at {self.source.node_position(node)}"
        return ExpressionError(f"{message}; {hint}" if hint else message, where=self.where)

    def summary(self) -> str:
        names = ", ".join([*sorted(self.allowed), *CONSTANTS])
        return (
            f"an expression may use numbers, the names {names}, the operators {_OPERATORS}, "
            f"parentheses and the functions {', '.join(FUNCTION_NAMES)}"
        )

    def compile(self, node: ast.expr, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.error(f"expression is nested deeper than {MAX_DEPTH} levels", node)
        match node:
            case ast.Constant(value=value):
                return self.number(node, value)
            case ast.Name(id=name):
                return self.name(node, name)
            case ast.BinOp(op=ast.Add() | ast.Sub() | ast.Mult() | ast.Div()):
                return self.chain(node, depth)
            case ast.BinOp(op=ast.Pow(), left=left, right=right):
                return _binary(
                    _ARITHMETIC[ast.Pow],
                    self.compile(left, depth + 1),
                    self.compile(right, depth + 1),
                )
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return _negate(self.compile(operand, depth + 1))
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return self.compile(operand, depth + 1)
            case ast.BinOp(op=op) | ast.UnaryOp(op=op):
                symbol = _OPERATOR_SYMBOLS.get(type(op), type(op).__name__)
                raise self.error(
                    f"operator {symbol!r} is not allowed", node, f"allowed: {_OPERATORS}"
                )
            case ast.Call():
                return self.call(node, depth)
        construct = _CONSTRUCTS.get(type(node), type(node).__name__)
        raise self.error(
            f"{construct} is not allowed ({self.source.snippet(node)})", node, self.summary()
        )

    def number(self, node: ast.expr, value: object) -> float:
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.error(f"{value!r} is not a number", node, self.summary())
        if isinstance(value, str | bytes):
            raise self.error(
                f"a string is not allowed ({self.source.snippet(node)})", node, self.summary()
            )
        if isinstance(value, complex):
            raise self.error(
                f"complex number {self.source.snippet(node)} is not allowed", node, "use reals"
            )
        assert isinstance(value, int | float)  # the only literal kinds Python has left
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(
                f"number {self.source.snippet(node)} is not finite", node, "use a float in range"
            )
        return number

    def name(self, node: ast.expr, name: str) -> _Node:
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.allowed:
            self.used.add(name)
            return _lookup(name, self.where)
        if name in _FUNCTIONS:
            raise self.error(
                f"function {name!r} must be called", node, f"write {_FUNCTIONS[name][2]}"
            )
        if name.startswith("__"):
            raise self.error(f"name {name!r} is not allowed", node, self.summary())
        known = [*sorted(self.allowed), *CONSTANTS]
        problem = f"unknown name {name!r}{_suggest(name, known)}"
        raise self.error(problem, node, f"allowed names: {', '.join(known) or 'none'}")

    def chain(self, node: ast.BinOp, depth: int) -> _Node:
        group = (
            (ast.Add, ast.Sub) if isinstance(node.op, ast.Add | ast.Sub) else (ast.Mult, ast.Div)
        )
        spine: list[ast.BinOp] = []
        current: ast.expr = node
        while isinstance(current, ast.BinOp) and isinstance(current.op, group):
            spine.append(current)
            current = current.left
        first = self.compile(current, depth + 1)
        rest = [
            (_ARITHMETIC[type(link.op)], self.compile(link.right, depth + 1))
            for link in reversed(spine)
        ]
        return _chain(first, rest)

    def call(self, node: ast.Call, depth: int) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.error(
                f"calling {self.source.snippet(func)} is not allowed",
                node,
                f"only these functions, by plain name: {', '.join(FUNCTION_NAMES)}",
            )
        name = func.id
        if name not in _FUNCTIONS:
            if name in self.allowed or name in CONSTANTS:
                raise self.error(f"{name!r} is not a function", node, self.summary())
            problem = f"unknown function {name!r}{_suggest(name, FUNCTION_NAMES)}"
            raise self.error(problem, node, f"allowed functions: {', '.join(FUNCTION_NAMES)}")
        _, arity, usage = _FUNCTIONS[name]
        if node.keywords:
            raise self.error(
                f"keyword arguments are not allowed in {name}()", node, f"write {usage}"
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(f"'*' unpacking is not allowed in {name}()", arg, f"write {usage}")
        if len(node.args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(
                f"{name}() takes {arity} {plural}, got {len(node.args)}", node, f"write {usage}"
            )
        return _call(_CALLS[name], [self.compile(arg, depth + 1) for arg in node.args])


def _suggest(name: str, candidates: Iterable[str]) -> str:
    if name in _HINTS:
        return f" ({_HINTS[name]})"
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


class Expression:
    """A validated formula, ready to evaluate many times; build one with :func:`parse_expression`.

    Calling it with an environment evaluates it with torch: names map to tensors (any shape,
    broadcast together by torch's rules, on any device; the result has their promoted dtype, so
    float32 in gives float32 out) or to plain numbers. The result is a tensor as soon as any name
    the expression uses is a tensor, and a ``float`` otherwise -- so a constant expression always
    gives a ``float``; broadcast it yourself where a full tensor is needed. Autograd flows through
    (``sign``/``heaviside``/``min``/``max`` have the gradients torch gives them).
    """

    __slots__ = ("text", "names", "where", "_allowed", "_node")

    def __init__(
        self, text: str, names: frozenset[str], where: str, allowed: frozenset[str], node: _Node
    ):
        self.text = text
        """The formula as the user wrote it."""
        self.names = names
        """The caller's names the formula uses (not ``pi``/``e`` nor function names)."""
        self.where = where
        """Where the formula came from; prefixes errors raised when it is evaluated."""
        self._allowed = allowed
        self._node = node

    def __call__(self, env: Env = _NO_NAMES) -> Value:
        """The value for ``env``, which maps each name in :attr:`names` (extras are ignored)."""
        node = self._node
        return node if isinstance(node, float) else node(env)

    @property
    def is_constant(self) -> bool:
        """True when the formula uses no names, e.g. a bound like ``"2*pi"``."""
        return isinstance(self._node, float)

    @property
    def value(self) -> float:
        """The number a constant formula stands for (may be ``inf``/``nan``, e.g. ``"1/0"``)."""
        if not isinstance(self._node, float):
            names = ", ".join(sorted(self.names))
            message = f"{self.text!r} must be a number here, but it depends on {names}"
            raise ExpressionError(message, where=self.where)
        return self._node

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Closures do not pickle; parsing again is cheap and re-validates.
        return (_rebuild, (self.text, sorted(self._allowed), self.where))


def _rebuild(text: str, allowed: list[str], where: str) -> Expression:
    return parse_expression(text, allowed, where=where)


def _check_allowed(allowed_names: Iterable[str], where: str) -> frozenset[str]:
    allowed = frozenset(allowed_names)
    for name in sorted(allowed, key=str):
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ExpressionError(f"{name!r} cannot be a name in expressions", where=where)
        if name.startswith("__"):
            raise ExpressionError(f"name {name!r} may not start with '__'", where=where)
        if name in RESERVED_NAMES:
            kind = "constant" if name in CONSTANTS else "function"
            message = f"name {name!r} is reserved for the built-in {kind}; rename it"
            raise ExpressionError(message, where=where)
    return allowed


def parse_expression(
    text: str | int | float, allowed_names: Iterable[str], *, where: str = ""
) -> Expression:
    """Validate ``text`` and compile it into an :class:`Expression`.

    ``allowed_names`` are the free names the formula may use (coordinates such as ``x``, ``t``
    and parameter names); none may be in :data:`RESERVED_NAMES`. ``where`` says where the text
    came from (e.g. ``"problems/x.toml: [conditions.left] value"``) and prefixes every error.
    A TOML number (``value = 0``) is accepted as well, so callers need not special-case it.

    Raises :class:`ExpressionError` for anything outside the whitelist, and for nothing else.
    """
    allowed = _check_allowed(allowed_names, where)
    if isinstance(text, int | float) and not isinstance(text, bool):
        # parsed like a string, so checks and messages are the same (numpy scalars included)
        text = repr(float(text)) if isinstance(text, float) else str(int(text))
    if not isinstance(text, str):
        message = f"expected a formula (a string) or a number, got {type(text).__name__}"
        raise ExpressionError(message, where=where)
    if len(text) > MAX_LENGTH:
        message = f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}"
        raise ExpressionError(message, where=where)
    source = _Source(text)
    if not source.code:
        raise ExpressionError("expression is empty; write a formula such as '0'", where=where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escapes in a string we will reject
            tree = ast.parse(source.code, mode="eval")
    except SyntaxError as err:
        position = ""
        if err.offset is not None:
            position = f" at {source.position(err.lineno or 1, err.offset - 1)}"
        message = f"syntax error{position}: {err.msg} in {' '.join(text.split())[:80]!r}"
        raise ExpressionError(message, where=where) from None
    except (ValueError, MemoryError, RecursionError) as err:
        # null bytes or lone surrogates (ValueError); a tree too complex for the parser
        message = f"cannot parse {text[:40]!r}: {type(err).__name__}: {str(err)[:80]}"
        raise ExpressionError(" ".join(message.split()), where=where) from None
    compiler = _Compiler(source, allowed, where)
    node = compiler.compile(tree.body, 1)
    return Expression(text, frozenset(compiler.used), where, allowed, node)
