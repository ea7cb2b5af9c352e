"""The `$filter` subset of 1C's standard OData, parsed and evaluated over the fake's entities.

Grammar (OData v3 as 1C reads it): ``or`` / ``and`` / ``not``, comparisons ``eq ne gt ge lt le``, arithmetic
``add sub mul div``, parentheses, literals ``guid'…'``, ``datetime'…'``, ``'str'`` (``''`` escapes a quote),
numbers, ``true``/``false``/``null``, and the functions ``substringof``, ``startswith``, ``endswith``, ``like``
(1C's ПОДОБНО with ``%`` and ``_``) and ``year``/``month``/``day``. Functions 1C does not support (``tolower``,
``length``, ``contains``…) raise :class:`FilterError`, as the platform answers code 14 for them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

Entity = dict[str, Any]
Node = Callable[[Entity], Any]

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<guid>guid'[0-9a-fA-F-]{36}')"
    r"|(?P<datetime>datetime'[0-9T:.-]+')"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<punct>[(),/])"
    r"|(?P<name>[^\s(),/']+)"
    r")"
)
_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_ARITH = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
UNSUPPORTED = {"tolower", "toupper", "length", "indexof", "replace", "trim", "contains", "floor", "ceiling"}


class FilterError(ValueError):
    """The filter cannot be parsed (1C: HTTP 400, code 14)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"Cannot parse the filter at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _like(value: Any, pattern: Any) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern))
    return re.fullmatch(regex, str(value or ""), flags=re.IGNORECASE | re.DOTALL) is not None


def _compare(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()  # 1C compares strings case-insensitively
    if left is None or right is None:
        return bool(op(left, right)) if op in (operator.eq, operator.ne) else False
    try:
        return bool(op(left, right))
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, known: set[str]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.known = known

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("Unexpected end of the filter.")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        _kind, text = self.take()
        if text != value:
            raise FilterError(f"Expected {value!r}, found {text!r}.")

    def word(self, *values: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "name" and token[1] in values:
            self.pos += 1
            return token[1]
        return None

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"Unexpected {self.peek()[1]!r}.")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        left = self.and_expr()
        while self.word("or"):
            right = self.and_expr()
            left = (lambda a, b: lambda e: bool(a(e)) or bool(b(e)))(left, right)
        return left

    def and_expr(self) -> Node:
        left = self.not_expr()
        while self.word("and"):
            right = self.not_expr()
            left = (lambda a, b: lambda e: bool(a(e)) and bool(b(e)))(left, right)
        return left

    def not_expr(self) -> Node:
        if self.word("not"):
            inner = self.not_expr()
            return lambda e: not inner(e)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.arith()
        op = self.word(*_COMPARE)
        if op is None:
            return left
        right = self.arith()
        fn = _COMPARE[op]
        return lambda e: _compare(fn, left(e), right(e))

    def arith(self) -> Node:
        left = self.primary()
        while (op := self.word(*_ARITH)) is not None:
            right = self.primary()
            fn = _ARITH[op]
            left = (lambda a, b, f: lambda e: f(a(e), b(e)))(left, right, fn)
        return left

    def primary(self) -> Node:
        kind, text = self.take()
        if text == "(":
            node = self.or_expr()
            self.expect(")")
            return node
        if kind == "guid":
            value: Any = text[5:-1].lower()
            return lambda e: value
        if kind == "datetime":
            value = text[9:-1]
            return lambda e: value
        if kind == "string":
            value = text[1:-1].replace("''", "'")
            return lambda e: value
        if kind == "number":
            value = Decimal(text)
            return lambda e: value
        if kind != "name":
            raise FilterError(f"Unexpected {text!r}.")
        if text in ("true", "false"):
            flag = text == "true"
            return lambda e: flag
        if text == "null":
            return lambda e: None
        nxt = self.peek()
        if nxt is not None and nxt[1] == "(":
            return self.function(text)
        return self.path(text)

    def path(self, first: str) -> Node:
        if first not in self.known:
            raise FilterError(f"Unknown property {first!r}.")
        while self.peek() is not None and self.peek()[1] == "/":  # type: ignore[index]
            self.take()
            self.take()  # navigation into another object: the fake has no joins, the value is unknown
            return lambda e: None
        return lambda e: e.get(first)

    def function(self, name: str) -> Node:
        if name in UNSUPPORTED:
            raise FilterError(f"The function {name} is not supported.")
        self.expect("(")
        args = [self.or_expr()]
        while self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
            self.take()
            args.append(self.or_expr())
        self.expect(")")

        def text(node: Node, e: Entity) -> str:
            return str(node(e) or "").lower()

        if name == "substringof" and len(args) == 2:
            a, b = args
            return lambda e: text(a, e) in text(b, e)
        if name == "startswith" and len(args) == 2:
            a, b = args
            return lambda e: text(a, e).startswith(text(b, e))
        if name == "endswith" and len(args) == 2:
            a, b = args
            return lambda e: text(a, e).endswith(text(b, e))
        if name == "like" and len(args) == 2:
            a, b = args
            return lambda e: _like(a(e), b(e))
        if name in ("year", "month", "day") and len(args) == 1:
            (a,) = args
            index = {"year": (0, 4), "month": (5, 7), "day": (8, 10)}[name]
            return lambda e: Decimal(str(a(e) or "0001-01-01")[index[0] : index[1]])
        raise FilterError(f"Unknown function {name} or a wrong number of arguments.")


def compile_filter(text: str, known: set[str]) -> Node:
    """A predicate for one entity; `known` are the entity type's property names."""
    return _Parser(text, known).parse()
