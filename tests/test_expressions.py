"""Tests for pinnsolve.problem.expressions: values, the whitelist, error messages, and
robustness."""

from __future__ import annotations

import ast
import builtins
import math
import pickle
import random
import re
import string
import time

import numpy as np
import pytest
import torch

from pinnsolve.errors import PinnsolveError
from pinnsolve.problem.expressions import (
    FUNCTION_NAMES,
    MAX_DEPTH,
    Expression,
    ExpressionError,
    parse_expression,
)

WHERE = "problems/x.toml: [conditions.left] value"
NAMES = ("x", "y", "t", "lam")


def parse(text: str, names: tuple[str, ...] = NAMES) -> Expression:
    return parse_expression(text, names, where=WHERE)


def reject(text: object, names: tuple[str, ...] = NAMES) -> str:
    """The message of the ExpressionError that ``text`` must raise, checked to be one line."""
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, names, where=WHERE)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(WHERE + ": ")
    assert "\n" not in message and "\r" not in message
    return message


# --- values ---------------------------------------------------------------------------------------

# (expression, the same computed with numpy from x, t, lam)
CASES = [
    ("sin(pi*x) * exp(-lam*t)", lambda x, t, lam: np.sin(np.pi * x) * np.exp(-lam * t)),
    ("x^2 + 2*t", lambda x, t, lam: x**2 + 2 * t),
    ("2*x^2 + 1", lambda x, t, lam: 2 * x**2 + 1),
    ("-x^2", lambda x, t, lam: -(x**2)),
    ("(1 - x)*(1 + x)/(1 + t)", lambda x, t, lam: (1 - x) * (1 + x) / (1 + t)),
    ("e^(-t) * cos(2*pi*x)", lambda x, t, lam: np.exp(-t) * np.cos(2 * np.pi * x)),
    ("atan2(x - 0.5, t + 0.1)", lambda x, t, lam: np.arctan2(x - 0.5, t + 0.1)),
    ("min(x, t) + max(x, lam*t)", lambda x, t, lam: np.minimum(x, t) + np.maximum(x, lam * t)),
    ("sqrt(abs(x - t)) * sign(x - t)", lambda x, t, lam: np.sqrt(abs(x - t)) * np.sign(x - t)),
    ("log(1 + x) + log10(2 + t) - tanh(x*t)", lambda x, t, lam: np.log1p(x) + np.log10(2 + t)
     - np.tanh(x * t)),
    ("1e-3*x - 2.5e2*t + 7", lambda x, t, lam: 1e-3 * x - 2.5e2 * t + 7),
    ("x - t - 1 - x/t/2", lambda x, t, lam: x - t - 1 - x / t / 2),
    ("lam^x^2", lambda x, t, lam: lam ** (x**2)),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("text", "reference"), CASES, ids=[c[0] for c in CASES])
def test_tensor_values_match_numpy(text, reference, dtype):
    x = np.linspace(0.05, 0.95, 17)
    t = np.linspace(0.1, 2.0, 17)
    lam = 1.7
    env = {"x": torch.tensor(x, dtype=dtype), "t": torch.tensor(t, dtype=dtype), "lam": lam}
    result = parse(text)(env)
    assert isinstance(result, torch.Tensor)
    assert result.dtype == dtype and result.shape == (17,)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(result.numpy(), reference(x, t, lam), rtol=tol, atol=tol)


@pytest.mark.parametrize(("text", "reference"), CASES, ids=[c[0] for c in CASES])
def test_float_values_match_numpy_and_stay_floats(text, reference):
    result = parse(text)({"x": 0.3, "t": 0.7, "lam": 1.7})
    assert type(result) is float
    assert result == pytest.approx(float(reference(0.3, 0.7, 1.7)), rel=1e-12)


def test_broadcasting_and_zero_dim_tensors():
    x = torch.linspace(0, 1, 5, dtype=torch.float64).reshape(5, 1)
    t = torch.linspace(0, 1, 3, dtype=torch.float64).reshape(1, 3)
    lam = torch.tensor(2.0, dtype=torch.float64)
    result = parse("x*exp(-lam*t) + atan2(t, 1)")({"x": x, "t": t, "lam": lam})
    assert result.shape == (5, 3)
    torch.testing.assert_close(result, x * torch.exp(-lam * t) + torch.atan2(t, torch.ones(())))
    # a 0-d tensor is still a tensor: tensor in, tensor out
    assert isinstance(parse("sin(lam)")({"lam": lam}), torch.Tensor)


def test_every_function_against_numpy():
    x = np.linspace(-0.9, 0.9, 11)
    env = {"x": torch.tensor(x), "y": torch.tensor(x[::-1].copy())}
    one_arg = {
        "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
        "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "exp": np.exp,
        "abs": np.abs, "sign": np.sign, "heaviside": lambda v: np.heaviside(v, 0.5),
    }  # fmt: skip
    for name, fn in one_arg.items():
        np.testing.assert_allclose(parse(f"{name}(x)")(env).numpy(), fn(x), rtol=1e-12)
    for name, fn in {"log": np.log, "log10": np.log10, "sqrt": np.sqrt}.items():
        np.testing.assert_allclose(parse(f"{name}(x + 1)")(env).numpy(), fn(x + 1), rtol=1e-12)
    two_args = {"atan2": np.arctan2, "min": np.minimum, "max": np.maximum}
    for name, fn in two_args.items():
        np.testing.assert_allclose(parse(f"{name}(x, y)")(env).numpy(), fn(x, x[::-1]))
    tested = set(one_arg) | set(two_args) | {"log", "log10", "sqrt"}
    assert tested == set(FUNCTION_NAMES)
    assert parse("heaviside(x)")({"x": 0.0}) == 0.5


def test_two_argument_functions_mix_tensors_and_numbers_keeping_dtype():
    x = torch.linspace(0.1, 0.9, 9, dtype=torch.float32)
    for text in ["atan2(1, x)", "atan2(x, lam)", "min(x, lam)", "max(0.5, x)"]:
        result = parse(text)({"x": x, "lam": 0.5})
        assert result.dtype == torch.float32 and result.shape == (9,)
    torch.testing.assert_close(parse("min(x, lam)")({"x": x, "lam": 0.5}), x.clamp(max=0.5))
    assert parse("max(lam, 2)")({"lam": 0.5}) == 2.0


def test_gradients_flow_through():
    x = torch.linspace(0, 1, 7, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(parse("lam*sin(x)^2")({"x": x, "lam": 3.0}).sum(), x)
    torch.testing.assert_close(grad, 3.0 * 2 * torch.sin(x) * torch.cos(x))


# --- power, precedence, constants -----------------------------------------------------------------


def test_caret_is_power_with_power_precedence():
    env = {"x": 3.0, "y": 2.0, "t": 0.5}
    assert parse("x^2")(env) == 9.0
    assert parse("2*x^2 + 1")(env) == 19.0  # not (2*x) XOR (2 + 1)
    assert parse("-x^2")(env) == -9.0  # -(x^2), as in Python
    assert parse("(-x)^2")(env) == 9.0
    assert parse("y^x^y")(env) == 2.0**9.0  # right-associative
    assert parse("2^-1")(env) == 0.5
    assert parse("x^2")(env) == parse("x**2")(env)


def test_constants_and_names():
    expr = parse("2*pi")
    assert expr.is_constant and expr.value == 2 * math.pi and expr.names == frozenset()
    assert parse("e").value == math.e
    assert parse("-(3)").value == -3.0 and type(parse("7").value) is float
    expr = parse("lam*x + pi*sin(x)")
    assert not expr.is_constant and expr.names == {"lam", "x"}
    assert expr.text == "lam*x + pi*sin(x)"
    assert parse("4")({"x": torch.ones(3)}) == 4.0  # a constant gives a float whatever the env


def test_toml_numbers_are_accepted():
    assert parse_expression(0, NAMES).value == 0.0
    assert parse_expression(-2.5, NAMES).value == -2.5
    assert parse_expression(1e-3, NAMES).value == 1e-3
    assert parse_expression(np.float64(0.25), NAMES).value == 0.25
    assert "numbers must be finite" in reject(float("inf"))
    assert "got bool" in reject(True)
    assert "got list" in reject([1])


def test_value_of_non_constant_is_an_error():
    with pytest.raises(
        ExpressionError, match=rf"^{re.escape(WHERE)}: 'x\*t' must be a number here"
    ):
        _ = parse("x*t").value


def test_missing_value_at_call_time():
    with pytest.raises(ExpressionError, match=rf"^{re.escape(WHERE)}: no value given for 't'"):
        parse("x + t")({"x": 1.0})


def test_torch_semantics_instead_of_python_exceptions():
    assert parse("1/0").value == math.inf
    assert math.isnan(parse("0/0").value)
    assert math.isnan(parse("(-8)^(1/3)").value)  # not a complex number
    assert math.isnan(parse("log(-1)").value)  # not a ValueError
    assert parse("1e308*10").value == math.inf
    assert parse("x/t")({"x": 1.0, "t": 0.0}) == math.inf


def test_exponent_blow_up_returns_promptly():
    start = time.perf_counter()
    assert parse("9**9**9").value == math.inf
    assert parse("9^9^9^9").value == math.inf
    assert parse("(1 + 1e-9)**(9**9**9)").value == math.inf
    result = parse("x**9**9**9 + 99^99^99")({"x": torch.full((4,), 2.0)})
    assert torch.isinf(result).all()
    assert parse("lam**9**9**9")({"lam": 9}) == math.inf  # an int from the caller, still no bigint
    assert time.perf_counter() - start < 2.0


def test_long_flat_sums_are_not_deep_but_real_nesting_is():
    n = 600
    expr = parse("+".join(["x"] * n) + "-" + "*".join(["t"] * 300))
    assert len(expr.text) < 2000
    assert expr({"x": 1.0, "t": 1.0}) == n - 1
    assert parse("sin(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1))({"x": 0.0}) == 0.0
    assert f"nested deeper than {MAX_DEPTH}" in reject("sin(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)
    assert f"nested deeper than {MAX_DEPTH}" in reject("-" * 100 + "x")
    assert f"nested deeper than {MAX_DEPTH}" in reject("2**" * 100 + "x")


def test_pickles_by_reparsing():
    expr = parse("sin(pi*x)*lam")
    clone = pickle.loads(pickle.dumps(expr))
    assert clone.text == expr.text and clone.names == expr.names and clone.where == WHERE
    assert clone({"x": 0.5, "lam": 2.0}) == expr({"x": 0.5, "lam": 2.0})


# --- rejections -----------------------------------------------------------------------------------

# (input, a fragment the message must contain)
MALICIOUS = [
    ("__import__('os').system('x')", "calling \"__import__('os').system\" is not allowed"),
    ("__import__('os')", "unknown function '__import__'"),
    ("().__class__", "attribute access is not allowed"),
    ("().__class__.__bases__[0].__subclasses__()", "is not allowed"),
    ("x.real", "attribute access is not allowed ('x.real') at column 1"),
    ("open('f')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("math.sin(x)", "calling 'math.sin' is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("[x for x in y]", "a list comprehension is not allowed"),
    ("(x for x in y)", "a generator expression is not allowed"),
    ('"abc"', "a string is not allowed"),
    ("b'abc'", "a string is not allowed"),
    ("f'{x}'", "an f-string is not allowed"),
    ("x if y else t", "a conditional expression is not allowed"),
    ("a[0]", "indexing is not allowed"),
    ("x[0]", "indexing is not allowed"),
    ("f(x=1)", "unknown function 'f'"),
    ("sin(x=1)", "keyword arguments are not allowed in sin()"),
    ("sin(*x)", "'*' unpacking is not allowed in sin() at column 5"),
    ("max(**x)", "keyword arguments are not allowed in max()"),
    ("(x := 1)", "an assignment ':=' is not allowed"),
    ("1 < 2", "a comparison is not allowed"),
    ("x and y", "'and'/'or' is not allowed"),
    ("not x", "operator 'not' is not allowed"),
    ("~x", "operator '~' is not allowed"),
    ("x // 2", "operator '//' is not allowed"),
    ("x % 2", "operator '%' is not allowed"),
    ("x @ y", "operator '@' is not allowed"),
    ("x | y", "operator '|' is not allowed"),
    ("True", "True is not a number"),
    ("None", "None is not a number"),
    ("...", "Ellipsis is not a number"),
    ("(x, y)", "a tuple is not allowed"),
    ("[x]", "a list is not allowed"),
    ("{x: 1}", "a dict is not allowed"),
    ("await x", "'await' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("x + __class__", "name '__class__' is not allowed at column 5"),
    ("sin(" * 70 + "x" + ")" * 70, f"nested deeper than {MAX_DEPTH} levels"),
    ("x+" * 2500 + "x", "the limit is 2000"),
    ("sin(x, y)", "sin() takes 1 argument, got 2 at column 1; write sin(x)"),
    ("atan2(x)", "atan2() takes 2 arguments, got 1"),
    ("min(x, y, t)", "min() takes 2 arguments, got 3"),
    ("lamda*x", "unknown name 'lamda' (did you mean 'lam'?) at column 1; allowed names: lam, t, x"),
    ("x + sinn(x)", "unknown function 'sinn' (did you mean 'sin'?) at column 5"),
    ("ln(x)", "unknown function 'ln' (did you mean log?)"),
    ("sin", "function 'sin' must be called"),
    ("x(2)", "'x' is not a function"),
    ("pi(2)", "'pi' is not a function"),
    ("", "expression is empty"),
    ("   \n ", "expression is empty"),
    ("sin(x", "syntax error at column 4: '(' was never closed"),
    ("x +* 2", "syntax error at column 4"),
    ("1j", "complex number '1j' is not allowed"),
    ("2 + 3j", "complex number '3j' is not allowed at column 5"),
    ("1e999", "number '1e999' is not finite"),
    ("9" * 400, "is not finite"),
    ("inf", "unknown name 'inf' (numbers must be finite)"),
    ("x\x00", "null bytes"),
    ("\ud800", "cannot parse"),
]


@pytest.mark.parametrize(("text", "fragment"), MALICIOUS, ids=[repr(m[0])[:40] for m in MALICIOUS])
def test_malicious_and_malformed_inputs_are_rejected(text, fragment):
    message = reject(text)
    assert fragment in message


def test_error_is_a_pinnsolve_error_and_where_is_optional():
    with pytest.raises(PinnsolveError):
        parse_expression("x.y", ["x"])
    with pytest.raises(ExpressionError) as info:
        parse_expression("z", ["x"])
    assert str(info.value).startswith("unknown name 'z'")
    assert info.value.where == ""


def test_columns_point_into_the_text_the_user_wrote():
    # '^' is rewritten to '**' before parsing; columns must not shift
    assert "at column 13" in reject("x^2 + t^2 + lamda")
    assert "at column 9" in reject("x^2^3 + $")  # a syntax error after carets
    assert "at column 7" in reject("  x + q")  # leading blanks count
    assert "at column 5" in reject("α + q", ("α",))  # characters, not UTF-8 bytes
    assert "at line 2, column 3" in reject("(x +\n  q)")


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["pi"], "name 'pi' is reserved for the built-in constant"),
        (["x", "e"], "name 'e' is reserved for the built-in constant"),
        (["exp"], "name 'exp' is reserved for the built-in function"),
        (["__x"], "may not start with '__'"),
        (["1a"], "'1a' cannot be a name"),
        (["lambda"], "'lambda' cannot be a name"),
    ],
)
def test_caller_names_are_checked(names, fragment):
    with pytest.raises(ExpressionError) as info:
        parse_expression("1", names, where=WHERE)
    assert str(info.value).startswith(f"{WHERE}: ") and fragment in str(info.value)


# --- fuzz -----------------------------------------------------------------------------------------

ALLOWED_TOKENS = [
    "x", "y", "t", "lam", "pi", "e", "1", "2.5", "1e-3", "0", " ", "+", "-", "*", "/", "**",
    "^", "(", ")", ",", "sin(", "atan2(", "min(", "max(", "exp(", "log(", "sqrt(", "heaviside(",
]  # fmt: skip
BAD_TOKENS = [
    "__import__", "__class__", ".", "[", "]", "{", "}", "lambda", ":", "=", ":=", " if ", " else ",
    " for ", " in ", "'", '"', "j", "1j", "@", "%", "//", "<", "==", " and ", " not ", "True",
    "None", "*", "\n", "\\", "#", "open(", "eval(", "f'", "b'", "...", "~", "|", "&", "lamda",
    "9**9**9", "1e999", "\x00", "\t", "é", "\u2028", "yield ", "await ", "x=1", "**x",
]  # fmt: skip


def _random_formula(rng: random.Random, depth: int = 0) -> str:
    """A valid formula, so that mutations of it probe the edges of the grammar."""
    roll = rng.random() if depth < 4 else 0.0
    if roll < 0.4:
        return rng.choice(["x", "y", "t", "lam", "pi", "e", "1", "2.5", "1e-3", "0", "9**9**9"])
    if roll < 0.7:
        op = rng.choice(["+", "-", "*", "/", "**", "^"])
        return f"{_random_formula(rng, depth + 1)} {op} {_random_formula(rng, depth + 1)}"
    if roll < 0.8:
        return f"{rng.choice('+-')}({_random_formula(rng, depth + 1)})"
    name = rng.choice(FUNCTION_NAMES)
    arity = 2 if name in ("atan2", "min", "max") else 1
    args = ", ".join(_random_formula(rng, depth + 1) for _ in range(arity))
    return f"{name}({args})"


def _random_text(rng: random.Random) -> str:
    """A mutated valid formula, or a soup of allowed, forbidden and random tokens."""
    if rng.random() < 0.5:
        text = _random_formula(rng)
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            at = rng.randrange(len(text) + 1)
            insert = rng.choice([rng.choice(BAD_TOKENS), rng.choice(string.printable), ""])
            text = text[:at] + insert + text[at + rng.choice([0, 1]) :]
        return text
    parts = []
    for _ in range(rng.randint(0, 25)):
        roll = rng.random()
        if roll < 0.6:
            parts.append(rng.choice(ALLOWED_TOKENS))
        elif roll < 0.85:
            parts.append(rng.choice(BAD_TOKENS))
        else:
            parts.append(rng.choice(string.printable))
    return "".join(parts)


def test_fuzz_parses_or_raises_expression_error_and_never_runs_code():
    rng = random.Random(20240611)
    texts = [_random_text(rng) for _ in range(4000)]
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)
    env_tensors = {"x": x, "y": x.flip(0), "t": x.abs(), "lam": torch.full((8,), 0.3)}
    env_floats = {"x": 0.25, "y": -0.5, "t": 0.75, "lam": 0.3}
    called = []

    def forbidden(name):
        def trap(*args, **kwargs):
            called.append(name)
            raise RuntimeError(f"{name} was called")

        return trap

    real_import = builtins.__import__

    def parser_only_import(name, *args, **kwargs):
        # CPython's parser imports unicodedata to NFKC-normalize non-ASCII identifiers
        if name != "unicodedata":
            called.append(f"import {name}")
            raise RuntimeError(f"import {name}")
        return real_import(name, *args, **kwargs)

    real_compile = builtins.compile

    def ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse is compile(..., PyCF_ONLY_AST): that is fine; code objects are not
        if not flags & ast.PyCF_ONLY_AST:
            called.append("compile")
            raise RuntimeError("compile to code")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    traps = {name: forbidden(name) for name in ("eval", "exec", "open", "__build_class__")}
    traps |= {"__import__": parser_only_import, "compile": ast_only_compile}
    originals = {name: getattr(builtins, name) for name in traps}
    # While builtins are trapped nothing here may assert (pytest's reporting imports and execs;
    # so does its monkeypatch): record what happened and check it once they are restored.
    # Evaluation (torch imports lazily) comes afterwards: it only runs the closures built here.
    rejected: list[str] = []
    parsed: list[tuple[str, Expression]] = []
    crashed: list[tuple[str, BaseException]] = []
    try:
        for name, trap in traps.items():
            setattr(builtins, name, trap)
        for text in texts:
            try:
                parsed.append((text, parse(text)))
            except ExpressionError as err:
                rejected.append(str(err))
            except Exception as err:
                crashed.append((text, err))
    finally:
        for name, original in originals.items():
            setattr(builtins, name, original)

    assert called == []
    assert crashed == []
    assert len(parsed) > 500 and len(rejected) > 1000, (len(parsed), len(rejected))
    for message in rejected:
        assert message.startswith(WHERE + ": ") and "\n" not in message, message
    for text, expr in parsed:
        on_tensors, on_floats = expr(env_tensors), expr(env_floats)
        assert type(on_floats) is float, text
        if expr.is_constant:
            assert type(on_tensors) is float, text
        else:
            assert isinstance(on_tensors, torch.Tensor) and on_tensors.shape == (8,), text
