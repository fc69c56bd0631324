"""Safe rate-law expressions: parse with a whitelist, differentiate, evaluate on batches.

Model files are data. An expression string is parsed by :func:`ast.parse` (which only builds a
syntax tree and runs nothing) and then every node is checked against a whitelist: numbers, names,
``+ - * / **``, unary minus and calls of the functions in :data:`FUNCTIONS`. Anything else
(attribute access, subscripts, lambdas, comprehensions, keyword arguments, strings, ...) is
rejected with an :class:`~her2sim.errors.ExpressionError`. The accepted tree is converted to the
small immutable node classes below; nothing from the file is ever passed to ``eval``/``exec``.

Evaluation is vectorised: a compiled expression takes species columns ``xT`` of shape
(n_species, B) and parameter columns ``pT`` of shape (n_params, B) and returns shape (B,)
(or a float when the expression is constant).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..errors import ExpressionError, UnitError

#: whitelisted functions and their arity. ``hill(x, K, n) = (x/K)**n / (1 + (x/K)**n)``,
#: ``mm(x, K) = x / (K + x)``, ``inhibit(x, K) = 1 / (1 + x/K)``.
FUNCTIONS = {
    "exp": 1, "log": 1, "log10": 1, "sqrt": 1, "abs": 1,
    "min": 2, "max": 2, "hill": 3, "mm": 2, "inhibit": 2,
    "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1, "atan": 1,
    "sinh": 1, "cosh": 1, "tanh": 1, "asinh": 1, "acosh": 1, "atanh": 1,
    "floor": 1, "ceil": 1, "piecewise": -1,
}
#: longest rate law or expression text (characters); the longest bundled one has ~200
MAX_EXPRESSION_LENGTH = 10_000
#: deepest syntax tree of one expression; the deepest bundled one has 11 levels, Chen 2009's PEtab
#: observable (a sum of 182 terms) 182; a sum of 480 terms was checked through both engines; the
#: converters below recurse once per level (Python's stack allows ~1,000)
MAX_EXPRESSION_DEPTH = 500
#: logical functions on 0/1 values (``and``/``or``/``xor`` take one or more arguments); in text
#: they are written with Python's ``and``, ``or``, ``not`` (and ``xor(a, b)``).
LOGIC = ("and", "or", "xor", "not")
#: comparison operators of :class:`Cmp` (value 1.0 when true, 0.0 when false)
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_CMP_AST = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
#: functions whose value is piecewise constant (derivative zero almost everywhere)
STEP_FUNCTIONS = ("floor", "ceil", "and", "or", "xor", "not")
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


# ----------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Bin:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Neg:
    arg: "Node"


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


@dataclass(frozen=True)
class Select:
    """``a_val if a < b else b_val`` (used by derivatives of min/max)."""

    a: "Node"
    b: "Node"
    if_less: "Node"
    otherwise: "Node"


@dataclass(frozen=True)
class Cmp:
    """``left op right`` as a number: 1.0 when true, 0.0 when false (op in :data:`COMPARISONS`)."""

    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Piecewise:
    """The first ``value`` whose ``condition`` is non-zero, else ``otherwise`` (SBML ``piecewise``).

    ``pieces`` is a tuple of (value, condition) pairs; conditions are 0/1 valued trees
    (:class:`Cmp`, logical calls) or any number (non-zero = true). Undefined cases use NaN.
    """

    pieces: tuple
    otherwise: "Node"


Node = Num | Sym | Bin | Neg | Call | Select | Cmp | Piecewise
ZERO, ONE = Num(0.0), Num(1.0)


# ----------------------------------------------------------------------------- parsing
def parse(text: str, *, where: str = "expression") -> Node:
    """Parse ``text`` into a node tree, rejecting anything outside the whitelist."""
    if not isinstance(text, str):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return Num(float(text))
        raise ExpressionError(f"{where}: expected an expression string, got {type(text).__name__} {text!r}")
    if "__" in text:
        raise ExpressionError(
            f"{where}: {text!r} contains '__'; dunder names are not allowed in rate expressions. "
            "Use only numbers, species/parameter names, + - * / ** and the functions "
            f"{', '.join(sorted(FUNCTIONS))}."
        )
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"{where}: the expression is {len(text):,} characters long, above the limit of "
                              f"{MAX_EXPRESSION_LENGTH:,}; split it into named [expressions] and refer to them")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{where}: cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError):  # the parser's own stack, not the machine's memory
        raise ExpressionError(f"{where}: the expression is nested too deeply to parse (limit "
                              f"{MAX_EXPRESSION_DEPTH} levels); split it into named [expressions]") from None
    depth = _depth(tree.body)
    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"{where}: the expression is nested {depth} levels deep (a sum of n terms nests n "
                              f"deep), above the limit of {MAX_EXPRESSION_DEPTH}; split it into named [expressions]")
    return _convert(tree.body, text, where)


def _depth(node: ast.AST) -> int:
    """Nesting depth of a syntax tree, computed without recursion."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n) if not isinstance(c, (ast.expr_context, ast.operator,
                                                                                        ast.unaryop)))
    return best


def _reject(node: ast.AST, text: str, where: str, what: str) -> ExpressionError:
    return ExpressionError(
        f"{where}: {what} is not allowed in {text!r}. Expressions may contain only numbers, names, "
        f"+ - * / **, parentheses and the functions {', '.join(sorted(FUNCTIONS))}."
    )


def _convert(node: ast.AST, text: str, where: str) -> Node:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _reject(node, text, where, f"the literal {node.value!r}")
        if not math.isfinite(float(node.value)):
            raise ExpressionError(f"{where}: the number in {text!r} is too large (it overflows to infinity); use a "
                                  "finite number, or a parameter with a unit")
        return Num(float(node.value))
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(f"{where}: {node.id!r} is a function; call it with arguments, e.g. {node.id}(...)")
        return Sym(node.id)
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise _reject(node, text, where, f"the operator {type(node.op).__name__}")
        return Bin(op, _convert(node.left, text, where), _convert(node.right, text, where))
    if isinstance(node, ast.Compare):
        parts, left = [], _convert(node.left, text, where)
        for op, comp in zip(node.ops, node.comparators):
            if type(op) not in _CMP_AST:
                raise _reject(node, text, where, f"the comparison {type(op).__name__}")
            right = _convert(comp, text, where)
            parts.append(Cmp(_CMP_AST[type(op)], left, right))
            left = right
        return parts[0] if len(parts) == 1 else Call("and", tuple(parts))
    if isinstance(node, ast.BoolOp):
        return Call("and" if isinstance(node.op, ast.And) else "or",
                    tuple(_convert(v, text, where) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Call("not", (_convert(node.operand, text, where),))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return Neg(_convert(node.operand, text, where))
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, text, where)
        raise _reject(node, text, where, f"the operator {type(node.op).__name__}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise _reject(node, text, where, "calling anything but a plain whitelisted function name (attribute access)")
        name = node.func.id
        if name == "xor" and not node.keywords and node.args:
            return Call("xor", tuple(_convert(a, text, where) for a in node.args))
        if name not in FUNCTIONS:
            raise ExpressionError(
                f"{where}: function {name!r} is not allowed in {text!r}; allowed functions: "
                f"{', '.join(sorted(FUNCTIONS))}."
            )
        if node.keywords:
            raise _reject(node, text, where, "keyword arguments")
        args = tuple(_convert(a, text, where) for a in node.args)
        if name == "piecewise":
            if len(args) % 2 == 0:
                raise ExpressionError(f"{where}: piecewise() takes value, condition pairs and a final 'otherwise' "
                                      f"value (an odd number of arguments), got {len(args)} in {text!r}")
            return Piecewise(tuple(zip(args[:-1:2], args[1:-1:2])), args[-1])
        if len(node.args) != FUNCTIONS[name]:
            raise ExpressionError(f"{where}: {name}() takes {FUNCTIONS[name]} argument(s), got {len(node.args)} in {text!r}")
        return Call(name, args)
    if isinstance(node, ast.Attribute):
        raise _reject(node, text, where, f"attribute access ('.{node.attr}')")
    raise _reject(node, text, where, f"a {type(node).__name__} construct")


# ----------------------------------------------------------------------------- tree utilities
def free_names(node: Node) -> set[str]:
    """All names an expression refers to."""
    if isinstance(node, Sym):
        return {node.name}
    if isinstance(node, Num):
        return set()
    if isinstance(node, Bin):
        return free_names(node.left) | free_names(node.right)
    if isinstance(node, Neg):
        return free_names(node.arg)
    if isinstance(node, Call):
        return set().union(*(free_names(a) for a in node.args))
    if isinstance(node, Cmp):
        return free_names(node.left) | free_names(node.right)
    if isinstance(node, Piecewise):
        return free_names(node.otherwise).union(*(free_names(v) | free_names(c) for v, c in node.pieces))
    return free_names(node.a) | free_names(node.b) | free_names(node.if_less) | free_names(node.otherwise)


def substitute(node: Node, mapping: Mapping[str, Node]) -> Node:
    """Replace names by trees (used to inline named expressions)."""
    if isinstance(node, Sym):
        return mapping.get(node.name, node)
    if isinstance(node, Num):
        return node
    if isinstance(node, Bin):
        return Bin(node.op, substitute(node.left, mapping), substitute(node.right, mapping))
    if isinstance(node, Neg):
        return Neg(substitute(node.arg, mapping))
    if isinstance(node, Call):
        return Call(node.fn, tuple(substitute(a, mapping) for a in node.args))
    if isinstance(node, Cmp):
        return Cmp(node.op, substitute(node.left, mapping), substitute(node.right, mapping))
    if isinstance(node, Piecewise):
        return Piecewise(tuple((substitute(v, mapping), substitute(c, mapping)) for v, c in node.pieces),
                         substitute(node.otherwise, mapping))
    return Select(*(substitute(n, mapping) for n in (node.a, node.b, node.if_less, node.otherwise)))


def to_text(node: Node) -> str:
    """Readable text of a tree (fully parenthesised where needed)."""
    if isinstance(node, Num):
        if not math.isfinite(node.value):  # SBML INF/NaN; not parseable back, for display only
            return repr(node.value)
        return repr(node.value) if node.value != int(node.value) or abs(node.value) > 1e15 else str(int(node.value))
    if isinstance(node, Sym):
        return node.name
    if isinstance(node, Bin):
        return f"({to_text(node.left)} {node.op} {to_text(node.right)})"
    if isinstance(node, Neg):
        return f"(-{to_text(node.arg)})"
    if isinstance(node, Call):
        if node.fn == "not":
            return f"(not {to_text(node.args[0])})"
        if node.fn in ("and", "or"):
            return "(" + f" {node.fn} ".join(to_text(a) for a in node.args) + ")"
        return f"{node.fn}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, Cmp):
        return f"({to_text(node.left)} {node.op} {to_text(node.right)})"
    if isinstance(node, Piecewise):
        parts = [t for v, c in node.pieces for t in (to_text(v), to_text(c))] + [to_text(node.otherwise)]
        return f"piecewise({', '.join(parts)})"
    return f"select_lt({to_text(node.a)}, {to_text(node.b)}, {to_text(node.if_less)}, {to_text(node.otherwise)})"


def expand(node: Node) -> Node:
    """Rewrite convenience functions (hill, mm, inhibit) into primitives."""
    if isinstance(node, (Num, Sym)):
        return node
    if isinstance(node, Bin):
        return Bin(node.op, expand(node.left), expand(node.right))
    if isinstance(node, Neg):
        return Neg(expand(node.arg))
    if isinstance(node, Select):
        return Select(*(expand(n) for n in (node.a, node.b, node.if_less, node.otherwise)))
    if isinstance(node, Cmp):
        return Cmp(node.op, expand(node.left), expand(node.right))
    if isinstance(node, Piecewise):
        return Piecewise(tuple((expand(v), expand(c)) for v, c in node.pieces), expand(node.otherwise))
    args = tuple(expand(a) for a in node.args)
    if node.fn == "hill":
        x, k, n = args
        power = Bin("**", Bin("/", x, k), n)
        return Bin("/", power, Bin("+", ONE, power))
    if node.fn == "mm":
        x, k = args
        return Bin("/", x, Bin("+", k, x))
    if node.fn == "inhibit":
        x, k = args
        return Bin("/", ONE, Bin("+", ONE, Bin("/", x, k)))
    return Call(node.fn, args)


# ----------------------------------------------------------------------------- simplification
def _num(node: Node, value: float) -> bool:
    return isinstance(node, Num) and node.value == value


def simplify(node: Node) -> Node:
    """Constant folding and the identities 0+x, 1*x, 0*x, x**1, -(-x); keeps trees small."""
    if isinstance(node, (Num, Sym)):
        return node
    if isinstance(node, Neg):
        arg = simplify(node.arg)
        if isinstance(arg, Num):
            return Num(-arg.value)
        if isinstance(arg, Neg):
            return arg.arg
        return Neg(arg)
    if isinstance(node, Call):
        args = tuple(simplify(a) for a in node.args)
        if all(isinstance(a, Num) for a in args) and node.fn in _SCALAR_FN:
            try:
                return Num(float(_SCALAR_FN[node.fn](*(a.value for a in args))))
            except (ValueError, OverflowError, ZeroDivisionError):
                pass
        return Call(node.fn, args)
    if isinstance(node, Select):
        parts = [simplify(n) for n in (node.a, node.b, node.if_less, node.otherwise)]
        if parts[2] == parts[3]:
            return parts[2]
        return Select(*parts)
    if isinstance(node, Cmp):
        left, right = simplify(node.left), simplify(node.right)
        if isinstance(left, Num) and isinstance(right, Num):
            return Num(float(_SCALAR_CMP[node.op](left.value, right.value)))
        return Cmp(node.op, left, right)
    if isinstance(node, Piecewise):
        pieces = []
        for v, c in node.pieces:
            c = simplify(c)
            if isinstance(c, Num) and not math.isnan(c.value):
                if c.value != 0:  # always true: the later pieces are never reached
                    return Piecewise(tuple(pieces), simplify(v)) if pieces else simplify(v)
                continue  # always false: drop
            pieces.append((simplify(v), c))
        otherwise = simplify(node.otherwise)
        if not pieces:
            return otherwise
        if all(v == otherwise for v, _ in pieces):
            return otherwise
        return Piecewise(tuple(pieces), otherwise)
    left, right, op = simplify(node.left), simplify(node.right), node.op
    if isinstance(left, Num) and isinstance(right, Num):
        try:
            return Num(float(_SCALAR_OP[op](left.value, right.value)))
        except (ZeroDivisionError, OverflowError, ValueError):
            return Bin(op, left, right)
    if op == "+":
        if _num(left, 0):
            return right
        if _num(right, 0):
            return left
        if isinstance(right, Neg):
            return simplify(Bin("-", left, right.arg))
    elif op == "-":
        if _num(right, 0):
            return left
        if _num(left, 0):
            return simplify(Neg(right))
        if left == right:
            return ZERO
    elif op == "*":
        if _num(left, 0) or _num(right, 0):
            return ZERO
        if _num(left, 1):
            return right
        if _num(right, 1):
            return left
        if _num(left, -1):
            return simplify(Neg(right))
        if _num(right, -1):
            return simplify(Neg(left))
        if isinstance(left, Neg):
            return simplify(Neg(Bin("*", left.arg, right)))
        if isinstance(right, Neg):
            return simplify(Neg(Bin("*", left, right.arg)))
    elif op == "/":
        if _num(left, 0):
            return ZERO
        if _num(right, 1):
            return left
        if isinstance(left, Neg):
            return simplify(Neg(Bin("/", left.arg, right)))
    elif op == "**":
        if _num(right, 0):
            return ONE
        if _num(right, 1):
            return left
    return Bin(op, left, right)


_SCALAR_OP = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}
_SCALAR_CMP = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}
_SCALAR_FN = {
    "exp": math.exp, "log": math.log, "log10": math.log10, "sqrt": math.sqrt, "abs": abs,
    "min": min, "max": max,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos, "atan": math.atan,
    "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh, "asinh": math.asinh, "acosh": math.acosh,
    "atanh": math.atanh, "floor": math.floor, "ceil": math.ceil,
    "and": lambda *a: all(v != 0 for v in a), "or": lambda *a: any(v != 0 for v in a),
    "xor": lambda *a: sum(v != 0 for v in a) % 2 == 1, "not": lambda a: a == 0,
}


# ----------------------------------------------------------------------------- differentiation
def diff(node: Node, var: str) -> Node:
    """Symbolic derivative d node / d var (after :func:`expand`), simplified."""
    return simplify(_diff(node, var))


def _diff(node: Node, var: str) -> Node:
    if isinstance(node, Num):
        return ZERO
    if isinstance(node, Sym):
        return ONE if node.name == var else ZERO
    if var not in free_names(node):
        return ZERO
    if isinstance(node, Neg):
        return Neg(_diff(node.arg, var))
    if isinstance(node, Select):
        return Select(node.a, node.b, _diff(node.if_less, var), _diff(node.otherwise, var))
    if isinstance(node, Cmp):
        return ZERO  # piecewise constant; the jump itself has no derivative
    if isinstance(node, Piecewise):
        return Piecewise(tuple((_diff(v, var), c) for v, c in node.pieces), _diff(node.otherwise, var))
    if isinstance(node, Call) and node.fn in STEP_FUNCTIONS:
        return ZERO
    if isinstance(node, Call) and node.fn in _TRIG_DIFF:
        return Bin("*", _TRIG_DIFF[node.fn](node.args[0], node), _diff(node.args[0], var))
    if isinstance(node, Call):
        a = node.args[0]
        da = _diff(a, var)
        if node.fn == "exp":
            return Bin("*", node, da)
        if node.fn == "log":
            return Bin("/", da, a)
        if node.fn == "log10":
            return Bin("/", da, Bin("*", a, Num(math.log(10.0))))
        if node.fn == "sqrt":
            return Bin("/", da, Bin("*", Num(2.0), node))
        if node.fn == "abs":
            return Bin("*", Call("sign", (a,)), da)
        if node.fn in ("min", "max"):
            b = node.args[1]
            db = _diff(b, var)
            return Select(a, b, da, db) if node.fn == "min" else Select(a, b, db, da)
        raise ExpressionError(f"cannot differentiate {node.fn}(); expand() the expression first")
    left, right, op = node.left, node.right, node.op
    dl, dr = _diff(left, var), _diff(right, var)
    if op == "+":
        return Bin("+", dl, dr)
    if op == "-":
        return Bin("-", dl, dr)
    if op == "*":
        return Bin("+", Bin("*", dl, right), Bin("*", left, dr))
    if op == "/":
        return Bin("-", Bin("/", dl, right), Bin("/", Bin("*", left, dr), Bin("*", right, right)))
    # power
    if var not in free_names(right):
        return Bin("*", Bin("*", right, Bin("**", left, Bin("-", right, ONE))), dl)
    return Bin("*", node, Bin("+", Bin("*", dr, Call("log", (left,))), Bin("/", Bin("*", right, dl), left)))


def _one_minus_square(a: Node) -> Node:
    return Bin("-", ONE, Bin("*", a, a))


#: d f(a) / da for the trigonometric and hyperbolic functions, given a and f(a)
_TRIG_DIFF = {
    "sin": lambda a, f: Call("cos", (a,)),
    "cos": lambda a, f: Neg(Call("sin", (a,))),
    "tan": lambda a, f: Bin("+", ONE, Bin("*", f, f)),
    "asin": lambda a, f: Bin("/", ONE, Call("sqrt", (_one_minus_square(a),))),
    "acos": lambda a, f: Neg(Bin("/", ONE, Call("sqrt", (_one_minus_square(a),)))),
    "atan": lambda a, f: Bin("/", ONE, Bin("+", ONE, Bin("*", a, a))),
    "sinh": lambda a, f: Call("cosh", (a,)),
    "cosh": lambda a, f: Call("sinh", (a,)),
    "tanh": lambda a, f: _one_minus_square(f),
    "asinh": lambda a, f: Bin("/", ONE, Call("sqrt", (Bin("+", Bin("*", a, a), ONE),))),
    "acosh": lambda a, f: Bin("/", ONE, Call("sqrt", (Bin("-", Bin("*", a, a), ONE),))),
    "atanh": lambda a, f: Bin("/", ONE, _one_minus_square(a)),
}


# ----------------------------------------------------------------------------- evaluation
Evaluator = Callable[[np.ndarray, np.ndarray], "np.ndarray | float"]

_NP_FN = {
    "exp": np.exp, "log": np.log, "log10": np.log10, "sqrt": np.sqrt, "abs": np.abs,
    "sign": np.sign, "min": np.minimum, "max": np.maximum,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "floor": np.floor, "ceil": np.ceil,
    "and": lambda *a: np.where(np.logical_and.reduce([np.not_equal(v, 0) for v in a]), 1.0, 0.0),
    "or": lambda *a: np.where(np.logical_or.reduce([np.not_equal(v, 0) for v in a]), 1.0, 0.0),
    "xor": lambda *a: np.where(np.logical_xor.reduce([np.not_equal(v, 0) for v in a]), 1.0, 0.0),
    "not": lambda a: np.where(np.equal(a, 0), 1.0, 0.0),
}
_NP_CMP = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
           "!=": np.not_equal}


#: public views for :mod:`her2sim.model.codegen` (NumPy and Python-float implementations by name)
NUMPY_FUNCTIONS, NUMPY_COMPARISONS = _NP_FN, _NP_CMP
SCALAR_FUNCTIONS, SCALAR_COMPARISONS = _SCALAR_FN, _SCALAR_CMP


def piecewise_array(*args):
    """``piecewise(v1, c1, v2, c2, ..., otherwise)`` on arrays: first value whose condition is non-zero."""
    out = args[-1]
    for k in range(len(args) - 3, -1, -2):
        out = np.where(np.not_equal(args[k + 1], 0), args[k], out)
    return out


def piecewise_scalar(*args):
    """``piecewise(v1, c1, ..., otherwise)`` on Python floats."""
    for k in range(0, len(args) - 1, 2):
        if args[k + 1] != 0:
            return args[k]
    return args[-1]
_NP_OP = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power}


def compile_expr(node: Node, species_index: Mapping[str, int], param_index: Mapping[str, int]) -> Evaluator:
    """Compile an expanded, simplified tree into ``f(xT, pT) -> (B,) array | float``.

    ``xT`` has shape (n_species, B) and ``pT`` shape (n_params, B). Every name must be a species
    or parameter in the given indices (named expressions are inlined before this step).
    """
    if isinstance(node, Num):
        value = node.value
        return lambda xT, pT: value
    if isinstance(node, Sym):
        if node.name in species_index:
            i = species_index[node.name]
            return lambda xT, pT: xT[i]
        if node.name in param_index:
            j = param_index[node.name]
            return lambda xT, pT: pT[j]
        raise ExpressionError(f"name {node.name!r} is neither a species nor a parameter")
    if isinstance(node, Neg):
        f = compile_expr(node.arg, species_index, param_index)
        return lambda xT, pT: -f(xT, pT)
    if isinstance(node, Bin):
        f = compile_expr(node.left, species_index, param_index)
        g = compile_expr(node.right, species_index, param_index)
        op = _NP_OP[node.op]
        if isinstance(node.right, Num) and node.op == "**" and node.right.value == 2.0:
            return lambda xT, pT: np.square(f(xT, pT))
        return lambda xT, pT: op(f(xT, pT), g(xT, pT))
    if isinstance(node, Call):
        fs = [compile_expr(a, species_index, param_index) for a in node.args]
        fn = _NP_FN[node.fn]
        if len(fs) == 1:
            f0 = fs[0]
            return lambda xT, pT: fn(f0(xT, pT))
        return lambda xT, pT: fn(*(f(xT, pT) for f in fs))
    if isinstance(node, Cmp):
        f = compile_expr(node.left, species_index, param_index)
        g = compile_expr(node.right, species_index, param_index)
        cmp = _NP_CMP[node.op]
        return lambda xT, pT: np.where(cmp(f(xT, pT), g(xT, pT)), 1.0, 0.0)
    if isinstance(node, Piecewise):
        fs = [compile_expr(n, species_index, param_index)
              for n in [t for v, c in node.pieces for t in (v, c)] + [node.otherwise]]
        return lambda xT, pT: piecewise_array(*(f(xT, pT) for f in fs))
    fa, fb, fl, fo = (compile_expr(n, species_index, param_index) for n in (node.a, node.b, node.if_less, node.otherwise))
    return lambda xT, pT: np.where(np.less(fa(xT, pT), fb(xT, pT)), fl(xT, pT), fo(xT, pT))


# ----------------------------------------------------------------------------- units
def evaluate_units(node: Node, units: Mapping, *, where: str = "expression"):
    """Dimension analysis: evaluate the tree on pint quantities of magnitude one.

    ``units`` maps each name to a pint Quantity (its unit, magnitude 1; or the parameter's
    value when it is used as an exponent). Returns the resulting pint Quantity; raises UnitError
    naming ``where`` on adding unlike units, a dimensioned exponent or function argument.
    """
    from .units import Quantity

    def walk(n):
        if isinstance(n, Num):
            return Quantity(n.value, "")
        if isinstance(n, Sym):
            return units[n.name]
        if isinstance(n, Neg):
            return -walk(n.arg)
        if isinstance(n, Bin):
            a, b = walk(n.left), walk(n.right)
            if n.op in "+-":
                if a.dimensionality != b.dimensionality:
                    raise UnitError(
                        f"{where}: cannot {'add' if n.op == '+' else 'subtract'} {to_text(n.left)} "
                        f"[{a.units:~}] and {to_text(n.right)} [{b.units:~}]: the units differ in dimension."
                    )
                return a + b if n.op == "+" else a - b
            if n.op == "*":
                return a * b
            if n.op == "/":
                return a / b if b.magnitude != 0 else a / Quantity(1.0, b.units)
            if not b.dimensionless:
                raise UnitError(f"{where}: the exponent {to_text(n.right)} must be dimensionless, it has unit {b.units:~}")
            if a.dimensionless:
                return Quantity(1.0, "")
            if not isinstance(n.right, Num):
                raise UnitError(
                    f"{where}: {to_text(n.left)} has unit {a.units:~} and is raised to the non-literal power "
                    f"{to_text(n.right)}; divide it by a constant of the same unit first (e.g. hill(x, K, n))."
                )
            return Quantity(1.0, a.units) ** n.right.value
        if isinstance(n, Cmp):
            a, b = walk(n.left), walk(n.right)
            if a.dimensionality != b.dimensionality:
                raise UnitError(f"{where}: cannot compare {to_text(n.left)} [{a.units:~}] with "
                                f"{to_text(n.right)} [{b.units:~}]: the units differ in dimension.")
            return Quantity(1.0, "")
        if isinstance(n, Piecewise):
            values = [walk(v) for v, _ in n.pieces] + [walk(n.otherwise)]
            for _, c in n.pieces:
                walk(c)
            dims = {v.dimensionality for v in values}
            if len(dims) > 1:
                raise UnitError(f"{where}: the values of {to_text(n)} differ in dimension "
                                f"({', '.join(f'{v.units:~}' for v in values)}).")
            return Quantity(1.0, values[0].units)
        if isinstance(n, Call):
            args = [walk(a) for a in n.args]
            if n.fn in LOGIC:
                return Quantity(1.0, "")
            if n.fn in ("floor", "ceil"):
                return Quantity(1.0, args[0].units)
            if n.fn in _TRIG_DIFF:
                if not args[0].dimensionless:
                    raise UnitError(f"{where}: {n.fn}() needs a dimensionless argument, got {to_text(n.args[0])} [{args[0].units:~}]")
                return Quantity(1.0, "")
            if n.fn in ("exp", "log", "log10"):
                if not args[0].dimensionless:
                    raise UnitError(f"{where}: {n.fn}() needs a dimensionless argument, got {to_text(n.args[0])} [{args[0].units:~}]")
                return Quantity(1.0, "")
            if n.fn == "sqrt":
                return Quantity(1.0, args[0].units) ** 0.5
            if n.fn in ("abs", "sign"):
                return Quantity(1.0, args[0].units) if n.fn == "abs" else Quantity(1.0, "")
            if n.fn in ("min", "max", "mm", "inhibit"):
                if args[0].dimensionality != args[1].dimensionality:
                    raise UnitError(f"{where}: {n.fn}() arguments must share a dimension, got {args[0].units:~} and {args[1].units:~}")
                return Quantity(1.0, args[0].units) if n.fn in ("min", "max") else Quantity(1.0, "")
            if n.fn == "hill":
                if args[0].dimensionality != args[1].dimensionality:
                    raise UnitError(f"{where}: hill(x, K, n) needs x and K in the same dimension, got {args[0].units:~} and {args[1].units:~}")
                if not args[2].dimensionless:
                    raise UnitError(f"{where}: the Hill coefficient in hill() must be dimensionless, got {args[2].units:~}")
                return Quantity(1.0, "")
        a = walk(n.if_less)
        return a

    return walk(node)
