"""Straight-line evaluators synthesised from expression trees (common subexpressions shared).

Why: evaluating a tree node by node costs one Python call per node, which dominates a
single-condition solve. Here the trees of a network (already validated by the whitelisting parser
in :mod:`her2sim.model.expr`) are interned into one DAG, shared subtrees become temporaries, and a Python
function is synthesised **as an AST built from our own node classes** and compiled. No text from a
model file reaches :func:`compile`: the synthesised code can only contain the names ``x``, ``p``,
temporaries ``t<N>``, float constants, arithmetic operators and the fixed helper functions below,
because names in the trees are replaced by integer subscripts during interning (an unknown name
raises before any code is built).

Three flavours: ``"array"`` (``x`` is a sequence of (B,) rows, NumPy functions; any batch size),
``"scalar"`` (``x`` is a list of Python floats, :mod:`math` functions; fastest for B = 1) and
``"array-api"`` (``x`` is an (n, B) array of any array-API namespace, e.g. CuPy; rows are read as
``x[k, ...]`` and the functions come from :func:`array_api_functions`).
"""

from __future__ import annotations

import ast
import builtins
import math
import types
from typing import Callable, Mapping, Sequence

import numpy as np

from . import expr as ex

_CMP_NAMES = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
_ARRAY_FUNCS = {
    "exp": np.exp, "log": np.log, "log10": np.log10, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "min": np.minimum, "max": np.maximum, "pow": np.power,
    "select": lambda a, b, c, d: np.where(np.less(a, b), c, d),
    "piecewise": ex.piecewise_array,
    **{name: ex.NUMPY_FUNCTIONS[name] for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                                          "asinh", "acosh", "atanh", "floor", "ceil", "and", "or", "xor", "not")},
    **{_CMP_NAMES[op]: (lambda f: lambda a, b: np.where(f(a, b), 1.0, 0.0))(f) for op, f in ex.NUMPY_COMPARISONS.items()},
}


def _safe(fn):
    def wrapped(*args):
        try:
            return fn(*args)
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.nan
    return wrapped


def _scalar_pow(a: float, b: float) -> float:
    try:
        r = a ** b
    except (ZeroDivisionError, OverflowError):
        return math.inf if a == 0 else math.nan
    return r if isinstance(r, float) else math.nan  # negative base, fractional power -> complex


_SCALAR_FUNCS = {
    "exp": _safe(math.exp), "log": _safe(math.log), "log10": _safe(math.log10), "sqrt": _safe(math.sqrt),
    "abs": abs, "sign": lambda a: (a > 0) - (a < 0), "min": min, "max": max, "pow": _scalar_pow,
    "select": lambda a, b, c, d: c if a < b else d,
    "piecewise": ex.piecewise_scalar,
    **{name: _safe(ex.SCALAR_FUNCTIONS[name]) for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
                                                     "tanh", "asinh", "acosh", "atanh")},
    "floor": lambda a: float(math.floor(a)) if math.isfinite(a) else a,
    "ceil": lambda a: float(math.ceil(a)) if math.isfinite(a) else a,
    **{name: (lambda f: lambda *a: 1.0 if f(*a) else 0.0)(ex.SCALAR_FUNCTIONS[name]) for name in ("and", "or", "xor", "not")},
    **{_CMP_NAMES[op]: (lambda f: lambda a, b: 1.0 if f(a, b) else 0.0)(f) for op, f in ex.SCALAR_COMPARISONS.items()},
}
_OPS = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}


def array_api_functions(xp) -> dict:
    """The helper functions of the ``"array-api"`` flavour for namespace ``xp``: only calls of the
    array API standard (2024.12+: Python scalars are accepted beside arrays in element-wise
    functions and ``where``; a lone Python float is lifted to a 0-d array only where no array is
    involved, so no host-to-device copy happens per call)."""
    f64 = xp.float64

    def arr(a):
        return a if hasattr(a, "shape") else xp.asarray(a, dtype=f64)

    def flag(cond):
        return xp.astype(cond, f64)

    def where(cond, a, b):
        return xp.where(cond, a, b) if hasattr(a, "shape") or hasattr(b, "shape") else xp.where(cond, arr(a), b)

    def nonzero(a):
        return xp.not_equal(arr(a), 0.0)

    def fold(op, args):
        out = nonzero(args[0])
        for a in args[1:]:
            out = op(out, nonzero(a))
        return flag(out)

    def piecewise(*args):
        out = args[-1]
        for k in range(len(args) - 3, -1, -2):
            out = where(nonzero(args[k + 1]), args[k], out)
        return out

    def unary(name):
        fn = getattr(xp, name)
        return lambda a: fn(arr(a))

    def binary(name):
        fn = getattr(xp, name)
        return lambda a, b: fn(a, b) if hasattr(a, "shape") or hasattr(b, "shape") else fn(arr(a), b)

    funcs = {name: unary(api) for name, api in (
        ("exp", "exp"), ("log", "log"), ("log10", "log10"), ("sqrt", "sqrt"), ("abs", "abs"), ("sign", "sign"),
        ("sin", "sin"), ("cos", "cos"), ("tan", "tan"), ("asin", "asin"), ("acos", "acos"), ("atan", "atan"),
        ("sinh", "sinh"), ("cosh", "cosh"), ("tanh", "tanh"), ("asinh", "asinh"), ("acosh", "acosh"),
        ("atanh", "atanh"), ("floor", "floor"), ("ceil", "ceil"))}
    funcs.update({"min": binary("minimum"), "max": binary("maximum"), "pow": binary("pow"),
                  "select": lambda a, b, c, d: where(binary("less")(a, b), c, d),
                  "piecewise": piecewise,
                  "and": lambda *a: fold(xp.logical_and, a), "or": lambda *a: fold(xp.logical_or, a),
                  "xor": lambda *a: fold(xp.logical_xor, a), "not": lambda a: flag(xp.equal(arr(a), 0.0))})
    for op, api in (("<", "less"), ("<=", "less_equal"), (">", "greater"), (">=", "greater_equal"),
                    ("==", "equal"), ("!=", "not_equal")):
        funcs[_CMP_NAMES[op]] = (lambda cmp: lambda a, b: flag(cmp(a, b)))(binary(api))
    return funcs


class Dag:
    """Interned expression DAG: equal subtrees get one id; leaves are species/parameter slots."""

    def __init__(self, species_index: Mapping[str, int], param_index: Mapping[str, int]):
        self.species_index = species_index
        self.param_index = param_index
        self.nodes: list[tuple] = []  # (kind, payload, child ids)
        self._ids: dict[tuple, int] = {}

    def _make(self, key: tuple) -> int:
        if key not in self._ids:
            self._ids[key] = len(self.nodes)
            self.nodes.append(key)
        return self._ids[key]

    def intern(self, node: ex.Node, env: Mapping[str, int] | None = None, memo: dict | None = None) -> int:
        """Id of ``node``; names in ``env`` (named expressions) resolve to already interned ids."""
        env = env or {}
        memo = {} if memo is None else memo
        key = id(node)
        if key in memo:
            return memo[key]
        if isinstance(node, ex.Num):
            out = self._make(("const", float(node.value), ()))
        elif isinstance(node, ex.Sym):
            if node.name in env:
                out = env[node.name]
            elif node.name in self.species_index:
                out = self._make(("x", self.species_index[node.name], ()))
            elif node.name in self.param_index:
                out = self._make(("p", self.param_index[node.name], ()))
            else:
                raise ex.ExpressionError(f"name {node.name!r} is neither a species, parameter nor expression")
        elif isinstance(node, ex.Bin):
            a, b = self.intern(node.left, env, memo), self.intern(node.right, env, memo)
            out = self._make(("bin", node.op, (a, b)))
        elif isinstance(node, ex.Neg):
            out = self._make(("neg", None, (self.intern(node.arg, env, memo),)))
        elif isinstance(node, ex.Call):
            out = self._make(("call", node.fn, tuple(self.intern(a, env, memo) for a in node.args)))
        elif isinstance(node, ex.Cmp):
            a, b = self.intern(node.left, env, memo), self.intern(node.right, env, memo)
            out = self._make(("call", _CMP_NAMES[node.op], (a, b)))
        elif isinstance(node, ex.Piecewise):
            parts = [t for v, c in node.pieces for t in (v, c)] + [node.otherwise]
            out = self._make(("call", "piecewise", tuple(self.intern(n, env, memo) for n in parts)))
        else:
            kids = tuple(self.intern(n, env, memo) for n in (node.a, node.b, node.if_less, node.otherwise))
            out = self._make(("call", "select", kids))
        memo[key] = out
        return out

    def linear_combination(self, terms: Sequence[tuple[float, int]]) -> int:
        """Id of sum(coefficient * node) (e.g. one row of N @ v); 0.0 for no terms."""
        total = None
        for coef, k in terms:
            if coef == 1.0:
                term = k
            elif coef == -1.0:
                term = self._make(("neg", None, (k,)))
            else:
                term = self._make(("bin", "*", (self._make(("const", float(coef), ())), k)))
            total = term if total is None else self._make(("bin", "+", (total, term)))
        return self._make(("const", 0.0, ())) if total is None else total

    def function(self, outputs: Sequence[int], flavour: str = "array", *, into: bool = False,
                 xp=None) -> Callable:
        """Synthesise ``f(x, p) -> tuple`` of the output ids' values, or with ``into=True``
        ``f(x, p, out)`` assigning output k to ``out[k]`` (rows of a (K, B) buffer).
        ``flavour="array-api"`` needs the namespace ``xp``."""
        full = flavour == "array-api"  # x[k, ...]: the standard has no implicit trailing axes
        reachable = self._reachable(outputs)
        uses: dict[int, int] = {}
        for k in reachable:
            for c in self.nodes[k][2]:
                uses[c] = uses.get(c, 0) + 1
        for k in outputs:
            uses[k] = uses.get(k, 0) + 2
        temps: dict[int, str] = {}
        body: list[ast.stmt] = []

        def emit(k: int) -> ast.expr:
            if k in temps:
                return ast.Name(temps[k], ast.Load())
            kind, payload, kids = self.nodes[k]
            if kind == "const":
                return ast.Constant(payload)
            if kind in ("x", "p"):
                return ast.Subscript(ast.Name(kind, ast.Load()), _row(payload, full), ast.Load())
            args = [emit(c) for c in kids]
            if kind == "neg":
                return ast.UnaryOp(ast.USub(), args[0])
            if kind == "bin":
                if payload == "**":
                    exponent = self.nodes[kids[1]]
                    if exponent[0] == "const" and exponent[1] == 2.0:
                        return ast.BinOp(args[0], ast.Mult(), emit(kids[0]))
                    return ast.Call(ast.Name("_pow", ast.Load()), args, [])
                return ast.BinOp(args[0], _OPS[payload](), args[1])
            return ast.Call(ast.Name(f"_{payload}", ast.Load()), args, [])

        for k in sorted(reachable):
            kind = self.nodes[k][0]
            if kind not in ("const", "x", "p") and uses.get(k, 0) >= 2:
                value = emit(k)
                temps[k] = f"t{k}"
                body.append(ast.Assign([ast.Name(temps[k], ast.Store())], value))
        if into:
            for row, k in enumerate(outputs):
                target = ast.Subscript(ast.Name("out", ast.Load()), _row(row, full), ast.Store())
                body.append(ast.Assign([target], emit(k)))
            body.append(ast.Return(ast.Name("out", ast.Load())))
        else:
            body.append(ast.Return(ast.Tuple([emit(k) for k in outputs], ast.Load())))
        arg_names = ["x", "p", "out"] if into else ["x", "p"]
        fn = ast.FunctionDef(
            name="evaluate",
            args=ast.arguments(posonlyargs=[], args=[ast.arg(a) for a in arg_names], kwonlyargs=[], kw_defaults=[],
                               defaults=[]),
            body=body, decorator_list=[], returns=None, type_params=[],
        )
        module = ast.fix_missing_locations(ast.Module([fn], type_ignores=[]))
        if full and xp is None:
            raise ValueError("flavour 'array-api' needs the namespace xp")
        funcs = {"array": _ARRAY_FUNCS, "scalar": _SCALAR_FUNCS}[flavour] if not full else array_api_functions(xp)
        namespace = {f"_{name}": f for name, f in funcs.items()}
        if full:
            # CuPy's ufunc dispatch reads the calling frame's __builtins__; the generated body
            # itself only names the functions above and its arguments (built from a whitelisted AST).
            namespace["__builtins__"] = builtins
        module_code = compile(module, "<her2sim generated>", "exec")
        fn_code = next(c for c in module_code.co_consts if isinstance(c, types.CodeType))
        return types.FunctionType(fn_code, namespace, "evaluate")

    def _reachable(self, outputs: Sequence[int]) -> set[int]:
        seen: set[int] = set()
        stack = list(outputs)
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            stack.extend(self.nodes[k][2])
        return seen


def _row(k: int, full: bool) -> ast.expr:
    """Subscript of row k: ``[k]``, or ``[k, ...]`` for the array-API flavour."""
    if not full:
        return ast.Constant(k)
    return ast.Tuple([ast.Constant(k), ast.Constant(Ellipsis)], ast.Load())
