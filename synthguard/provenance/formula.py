"""A json-formula interpreter for the subset the C2PA Asset Rubrics use.

json-formula (Adobe, a superset of JMESPath: https://opensource.adobe.com/json-formula/) is the expression language
of the C2PA Asset Rubrics 1.0 (``provenance.rubric``). Covered: fields, quoted identifiers, ``@``, ``$variables``,
indexes, filter projections, ``|| && !``, comparisons, JSON and string literals, multi-select lists and hashes,
``length``, ``contains``, ``startsWith`` and named expressions (a caller's own functions, called with arguments
seen as ``$args``). Anything else is refused by ``compile_formula`` or ``check_names``, before any data is read.

``compile_formula`` gives a syntax tree (nested tuples); ``Interpreter.run`` evaluates one on JSON data; an
expression that fails on the data it is given (a type error on hostile input) raises ``FormulaError``.
"""

from __future__ import annotations

import json
import re

MAX_CALL_DEPTH = 32


class FormulaError(Exception):
    """A json-formula expression is outside the supported subset, or fails on the data it is given."""


# --- json-formula: lexer -------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<qident>'(?:[^'\\]|\\.)*')
  | (?P<literal>`(?:[^`\\]|\\.)*`)
  | (?P<op>\[\?|\|\||&&|==|!=|<=|>=|[<>!.,:()\[\]{}@])
""", re.VERBOSE)


def _lex(text: str) -> list[tuple[str, object]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FormulaError(f"unsupported json-formula syntax at {text[pos:pos + 20]!r}")
        kind, raw = match.lastgroup, match.group()
        pos = match.end()
        if kind == "ws":
            continue
        if kind in ("number", "string", "literal"):  # numbers and "strings" read as JSON; `json` literals too
            try:
                tokens.append(("literal", json.loads(raw[1:-1].replace("\\`", "`") if kind == "literal" else raw)))
            except ValueError:
                raise FormulaError(f"the literal {raw[:40]!r} is not valid JSON") from None
        elif kind == "qident":
            tokens.append(("qident", raw[1:-1].replace("\\'", "'").replace("\\\\", "\\")))
        else:
            tokens.append((kind, raw) if kind in ("var", "ident") else (raw, raw))
    tokens.append(("eof", None))
    return tokens


# --- json-formula: parser (Pratt, binding powers as in JMESPath) ---------------------------------------------------

_BP = {"eof": 0, ")": 0, "]": 0, "}": 0, ",": 0, ":": 0, "||": 2, "&&": 3, "==": 5, "!=": 5, "<": 5, "<=": 5,
       ">": 5, ">=": 5, "[?": 21, ".": 40, "!": 45, "{": 50, "[": 55, "(": 60}
_CURRENT = ("current",)


class _Parser:
    def __init__(self, text: str):
        self.text, self.tokens, self.pos = text, _lex(text), 0

    def fail(self, what: str) -> FormulaError:
        return FormulaError(f"{what} in {self.text.strip()[:60]!r}")

    def peek(self, ahead: int = 0) -> str:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)][0]

    def take(self, kind: str | None = None):
        token = self.tokens[self.pos]
        if kind is not None and token[0] != kind:
            raise self.fail(f"expected {kind!r}, found {token[0]!r}")
        self.pos += 1
        return token[1]

    def expression(self, bp: int) -> tuple:
        left = self.nud(*self.tokens[self.pos])
        while bp < _BP.get(self.peek(), -1):
            left = self.led(self.peek(), left)
        if self.peek() not in _BP:
            raise self.fail(f"unexpected {self.peek()!r}")
        return left

    def nud(self, kind: str, value) -> tuple:
        self.pos += 1
        if kind == "ident":
            return self.call(value) if self.peek() == "(" else ("field", value)
        if kind in ("qident", "var", "literal"):
            return ("field" if kind == "qident" else kind, value)
        if kind == "@":
            return _CURRENT
        if kind == "!":
            return ("not", self.expression(_BP["!"]))
        if kind == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if kind in ("[", "[?"):
            return self.bracket(_CURRENT) if kind == "[" else self.filter(_CURRENT)
        if kind == "{":
            return self.multi_hash()
        raise self.fail(f"unsupported json-formula token {kind!r}")

    def led(self, kind: str, left: tuple) -> tuple:
        self.pos += 1
        if kind == ".":
            return ("sub", left, self.dot_rhs())
        if kind in ("[", "[?"):
            return self.bracket(left) if kind == "[" else self.filter(left)
        if kind in ("||", "&&"):
            return ("or" if kind == "||" else "and", left, self.expression(_BP[kind]))
        if kind in ("==", "!=", "<", "<=", ">", ">="):
            return ("compare", kind, left, self.expression(_BP[kind]))
        raise self.fail(f"unsupported json-formula operator {kind!r}")

    def call(self, name: str) -> tuple:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.expression(0))
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        return ("call", name, tuple(args))

    def bracket(self, left: tuple) -> tuple:
        """After ``[``: an index ``[0]``, or (on ``@`` only) a multi-select list."""
        value = self.tokens[self.pos][1]
        if self.peek() == "literal" and type(value) is int and self.peek(1) == "]":
            self.pos += 2
            return ("index", left, value)
        if left is not _CURRENT:
            raise self.fail("unsupported bracket expression")
        items = [self.expression(0)]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.expression(0))
        self.take("]")
        return ("list", tuple(items))

    def filter(self, left: tuple) -> tuple:
        condition = self.expression(0)
        self.take("]")
        return ("filter", left, condition, self.projection_rhs(_BP["[?"]))

    def multi_hash(self) -> tuple:
        pairs = []
        while True:
            kind, key = self.tokens[self.pos]
            if kind not in ("ident", "qident"):
                raise self.fail(f"a multi-select hash key must be a name, not {kind!r}")
            self.pos += 1
            self.take(":")
            pairs.append((key, self.expression(0)))
            if self.take() == "}":
                return ("hash", tuple(pairs))
            if self.tokens[self.pos - 1][0] != ",":
                raise self.fail("expected ',' or '}' in a multi-select hash")

    def dot_rhs(self) -> tuple:
        kind = self.peek()
        if kind in ("ident", "qident"):
            name = self.take()
            if kind == "ident" and self.peek() == "(":
                raise self.fail(f"a function call after '.' ({name}()) is not supported")
            return ("field", name)
        if kind in ("[", "{"):
            self.pos += 1
            return self.bracket(_CURRENT) if kind == "[" else self.multi_hash()
        raise self.fail("unsupported expression after '.'")

    def projection_rhs(self, bp: int) -> tuple:
        kind = self.peek()
        if _BP.get(kind, -1) < 10:
            return _CURRENT
        if kind in ("[", "[?"):
            return self.expression(bp)
        if kind == ".":
            self.pos += 1
            return self.dot_rhs()
        raise self.fail("unsupported expression after a projection")


def _nodes_of(tree: tuple):
    """Every node of a syntax tree."""
    yield tree
    children = {"list": lambda: tree[1], "hash": lambda: [value for _, value in tree[1]], "call": lambda: tree[2]}
    for child in children.get(tree[0], lambda: [c for c in tree[1:] if isinstance(c, tuple)])():
        yield from _nodes_of(child)


def check_names(tree: tuple, functions: set, variables: set) -> None:
    for node in _nodes_of(tree):
        if node[0] == "call" and node[1] not in functions:
            raise FormulaError(f"unsupported function {node[1]}()")
        if node[0] == "call" and node[1] in FUNCTIONS and len(node[2]) != FUNCTIONS[node[1]][0]:
            raise FormulaError(f"{node[1]}() takes {FUNCTIONS[node[1]][0]} arguments, not {len(node[2])}")
        if node[0] == "var" and node[1] not in variables:
            raise FormulaError(f"the rubric defines no variable {node[1]}")


def compile_formula(text: str) -> tuple:
    """The syntax tree of one json-formula expression (FormulaError when outside the supported subset)."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("an expression must be a non-empty string")
    parser = _Parser(text)
    tree = parser.expression(0)
    if parser.peek() != "eof":
        raise parser.fail(f"unexpected {parser.peek()!r}")
    return tree


# --- json-formula: interpreter -------------------------------------------------------------------------------------

def _truthy(value) -> bool:
    # json-formula's false values are Python's for JSON data: false, null, 0, "", [] and {}
    return bool(value)


def json_type(value) -> str:
    """The json-formula type name of a JSON value (boolean, number, null, string, array, object)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {type(None): "null", str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _equal(a, b) -> bool:
    ta, tb = json_type(a), json_type(b)
    if ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if ta == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _number(value, op: str) -> float:
    # ordering comparisons coerce null and booleans to numbers, as json-formula does
    if value is None or isinstance(value, (bool, int, float)):
        return float(value or 0)
    raise FormulaError(f"cannot compare a {json_type(value)} with {op}")


def _compare(op: str, a, b) -> bool:
    if op in ("==", "!="):
        return _equal(a, b) == (op == "==")
    if not (isinstance(a, str) and isinstance(b, str)):
        a, b = _number(a, op), _number(b, op)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _text_arg(value, function: str) -> str:
    # null reads as "", a number or a boolean as its JSON text, as json-formula coerces them
    if value is None or isinstance(value, str):
        return value or ""
    if json_type(value) in ("number", "boolean"):
        return json.dumps(value)
    raise FormulaError(f"{function}() expects a string, not a {json_type(value)}")


def _length(value):
    if value is None or isinstance(value, (str, list, dict)):
        return len(value or ())
    raise FormulaError(f"length() cannot take a {json_type(value)}")


def _contains(subject, search):
    if subject is None:
        return False
    if isinstance(subject, list):
        return any(_equal(item, search) for item in subject)
    if isinstance(subject, str):
        if not isinstance(search, str):
            raise FormulaError(f"contains() on a string needs a string to search for, not a {json_type(search)}")
        return search in subject
    raise FormulaError(f"contains() cannot search a {json_type(subject)}")


# The built-in functions: name -> (number of arguments, implementation over the evaluated arguments).
FUNCTIONS = {
    "length": (1, lambda a: _length(a[0])),
    "contains": (2, lambda a: _contains(a[0], a[1])),
    "startsWith": (2, lambda a: _text_arg(a[0], "startsWith").startswith(_text_arg(a[1], "startsWith"))),
}


class Interpreter:
    """Evaluates syntax trees against JSON data, with a rubric's variables and named expressions."""

    def __init__(self, variables: dict, expressions: dict[str, tuple]):
        self.variables, self.expressions = variables, expressions
        self.args: list | None = None
        self.depth = 0

    def run(self, node: tuple, data):
        kind = node[0]
        if kind in ("current", "literal"):
            return data if kind == "current" else node[1]
        if kind == "field":
            return data.get(node[1]) if isinstance(data, dict) else None
        if kind == "var":
            return self.variable(node[1])
        if kind == "sub":
            return self.run(node[2], self.run(node[1], data))
        if kind == "index":
            base, index = self.run(node[1], data), node[2]
            return base[index] if isinstance(base, list) and -len(base) <= index < len(base) else None
        if kind == "filter":
            base = self.run(node[1], data)
            if not isinstance(base, list):
                return None
            return [self.run(node[3], item) for item in base if _truthy(self.run(node[2], item))]
        if kind in ("or", "and"):
            # json-formula's || and && give an operand, not a boolean: a || b is a when a is true, else b
            left = self.run(node[1], data)
            return left if _truthy(left) == (kind == "or") else self.run(node[2], data)
        if kind == "not":
            return not _truthy(self.run(node[1], data))
        if kind == "compare":
            return _compare(node[1], self.run(node[2], data), self.run(node[3], data))
        if kind == "list":
            return [self.run(item, data) for item in node[1]]
        if kind == "hash":
            return {key: self.run(value, data) for key, value in node[1]}
        if kind == "call":
            return self.call(node[1], [self.run(arg, data) for arg in node[2]], data)
        raise FormulaError(f"unknown syntax node {kind!r}")

    def variable(self, name: str):
        if name != "$args":
            return self.variables[name]  # every name was checked when the rubric loaded
        if self.args is None:
            raise FormulaError("$args is used outside a named expression called with arguments")
        return self.args

    def call(self, name: str, args: list, data):
        if name in FUNCTIONS:
            return FUNCTIONS[name][1](args)
        if self.depth >= MAX_CALL_DEPTH:
            raise FormulaError(f"named expressions nest deeper than {MAX_CALL_DEPTH} calls (at {name})")
        saved = self.args
        self.depth += 1
        if args:
            self.args = args
        try:
            return self.run(self.expressions[name], data)
        finally:
            self.args, self.depth = saved, self.depth - 1

