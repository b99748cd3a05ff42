"""Evaluates GitHub Actions `${{ }}` expressions against a made-up context, for workflow tests.

Covers the subset the workflows use: string, number and boolean literals, context properties
(`github.ref`, `github.event.pull_request.number`), `==`, `!=`, `!`, `&&`, `||`, parentheses and
`startsWith`, `endsWith`, `contains`. As on GitHub, string comparisons ignore case, a missing
property is null, and `&&` / `||` return an operand rather than a boolean. Anything else raises,
so a test never passes because of an expression it did not understand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||[!(),])|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))"
)
_WRAPPED = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)


def evaluate(expression: str | bool, context: Mapping[str, Any]) -> Any:
    """The value of `expression` (with or without `${{ }}`) in `context`, e.g. {"github": {}}."""
    if isinstance(expression, bool):
        return expression
    wrapped = _WRAPPED.match(expression)
    parser = _Parser(_tokens(wrapped.group(1) if wrapped else expression), context)
    value = parser.parse_or()
    if parser.position != len(parser.tokens):
        raise ValueError(f"unexpected {parser.tokens[parser.position]!r} in {expression!r}")
    return value


def truthy(value: Any) -> bool:
    """GitHub's truthiness: null, false, 0 and '' are false."""
    return value not in (None, False, 0, "")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise ValueError(f"cannot read {text[position:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _equal(left: Any, right: Any) -> bool:
    return bool(_fold(left) == _fold(right))


_FUNCTIONS: dict[str, Callable[[Any, Any], bool]] = {
    "startswith": lambda text, prefix: str(_fold(text)).startswith(str(_fold(prefix))),
    "endswith": lambda text, suffix: str(_fold(text)).endswith(str(_fold(suffix))),
    "contains": lambda haystack, needle: (
        any(_equal(item, needle) for item in haystack)
        if isinstance(haystack, list)
        else str(_fold(needle)) in str(_fold(haystack))
    ),
}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], context: Mapping[str, Any]) -> None:
        self.tokens = tokens
        self.context = context
        self.position = 0

    def parse_or(self) -> Any:
        value = self.parse_and()
        while self._accept("||"):
            right = self.parse_and()
            value = value if truthy(value) else right
        return value

    def parse_and(self) -> Any:
        value = self.parse_comparison()
        while self._accept("&&"):
            right = self.parse_comparison()
            value = right if truthy(value) else value
        return value

    def parse_comparison(self) -> Any:
        value = self.parse_unary()
        while True:
            if self._accept("=="):
                value = _equal(value, self.parse_unary())
            elif self._accept("!="):
                value = not _equal(value, self.parse_unary())
            else:
                return value

    def parse_unary(self) -> Any:
        if self._accept("!"):
            return not truthy(self.parse_unary())
        if self._accept("("):
            value = self.parse_or()
            self._expect(")")
            return value
        kind, text = self._next()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "name":
            return self._name(text)
        raise ValueError(f"unexpected {text!r}")

    def _name(self, name: str) -> Any:
        literals = {"true": True, "false": False, "null": None}
        if name in literals:
            return literals[name]
        if self._accept("("):
            function = _FUNCTIONS.get(name.casefold())
            if function is None:
                raise ValueError(f"function {name}() is not supported")
            first = self.parse_or()
            self._expect(",")
            second = self.parse_or()
            self._expect(")")
            return function(first, second)
        value: Any = self.context
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def _next(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ValueError("expression ends too early")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _accept(self, op: str) -> bool:
        if self.position < len(self.tokens) and self.tokens[self.position] == ("op", op):
            self.position += 1
            return True
        return False

    def _expect(self, op: str) -> None:
        if not self._accept(op):
            raise ValueError(f"expected {op!r}")
