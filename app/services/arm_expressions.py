"""ARM template expressions (`"[resourceId('T', parameters('n'))]"`) as a small tree.

The Bicep export reads the ARM template's expressions instead of keeping a second,
hand-written copy of every resource: the subset used here is function calls,
string and integer literals, property access (`.x`) and indexes (`[0]`), as in
"Template functions" / "Syntax and expressions in ARM templates" on Microsoft Learn
(https://learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions).
A string not in brackets is a literal; `[[` escapes a literal that starts with `[`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Call", "Expr", "Index", "Int", "Prop", "Str", "is_expression", "parse", "render"]


@dataclass(frozen=True)
class Str:
    value: str


@dataclass(frozen=True)
class Int:
    value: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Prop:
    base: Expr
    name: str


@dataclass(frozen=True)
class Index:
    base: Expr
    index: Expr


Expr = Str | Int | Call | Prop | Index


def is_expression(text: str) -> bool:
    return text.startswith("[") and text.endswith("]") and not text.startswith("[[")


def parse(text: str) -> Expr:
    """A template string value as a tree (a plain string is a `Str`)."""
    if not is_expression(text):
        return Str(text[1:] if text.startswith("[[") else text)
    parser = _Parser(text[1:-1])
    expr = parser.expression()
    parser.skip()
    if parser.pos != len(parser.text):
        raise ValueError(f"unexpected {parser.text[parser.pos:]!r} in ARM expression {text!r}")
    return expr


def render(expr: Expr) -> str:
    """The tree as ARM writes it inside brackets (the inverse of `parse`)."""
    if isinstance(expr, Str):
        return "'" + expr.value.replace("'", "''") + "'"
    if isinstance(expr, Int):
        return str(expr.value)
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(render(a) for a in expr.args)})"
    if isinstance(expr, Prop):
        return f"{render(expr.base)}.{expr.name}"
    return f"{render(expr.base)}[{render(expr.index)}]"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at {self.pos} in {self.text!r}")
        self.pos += 1

    def expression(self) -> Expr:
        expr = self.primary()
        while self.peek() in (".", "["):
            if self.peek() == ".":
                self.take(".")
                expr = Prop(expr, self.identifier())
            else:
                self.take("[")
                expr = Index(expr, self.expression())
                self.take("]")
        return expr

    def identifier(self) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum()
                                             or self.text[self.pos] in "_$"):
            self.pos += 1
        if start == self.pos:
            raise ValueError(f"expected a name at {start} in {self.text!r}")
        return self.text[start:self.pos]

    def primary(self) -> Expr:
        char = self.peek()
        if char == "'":
            return self.string()
        if char.isdigit() or char == "-":
            start = self.pos
            self.pos += 1
            while self.pos < len(self.text) and self.text[self.pos].isdigit():
                self.pos += 1
            return Int(int(self.text[start:self.pos]))
        name = self.identifier()
        self.take("(")
        args: list[Expr] = []
        if self.peek() != ")":
            args.append(self.expression())
            while self.peek() == ",":
                self.take(",")
                args.append(self.expression())
        self.take(")")
        return Call(name, tuple(args))

    def string(self) -> Str:
        self.take("'")
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise ValueError(f"unterminated string in {self.text!r}")
            char = self.text[self.pos]
            self.pos += 1
            if char == "'":
                if self.text[self.pos:self.pos + 1] == "'":
                    out.append("'")
                    self.pos += 1
                    continue
                return Str("".join(out))
            out.append(char)
