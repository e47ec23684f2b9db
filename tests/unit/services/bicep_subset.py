"""A reader for the Bicep the export writes, compiling it back to ARM template JSON.

No Bicep compiler runs here, so the test does what `az bicep build` does for the
subset the emitter uses: parameters, resources (`existing`, `parent`, `scope`,
`dependsOn`), outputs; strings with `${}` interpolation; symbol references
(`sym.id`, `sym.properties.x`, `sym.identity.x`, `sym.listKeys()`); calls, member
access and indexes. The result is compared, after the normalisation below, with
the ARM export itself. Bicep's rules as on Microsoft Learn ("Bicep file structure
and syntax", "String interpolation", "Resource dependencies", "Child resources").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.services.arm_expressions import Call, Expr, Index, Int, Prop, Str, parse

# --- the Bicep side: tokens, values ----------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t]+) | (?P<comment>//[^\n]*) | (?P<nl>\n) |
    (?P<str>'(?:\\.|[^'\\])*') | (?P<num>-?\d+) |
    (?P<id>[A-Za-z_][A-Za-z0-9_]*) | (?P<op>[{}\[\]().,:=@])
""", re.VERBOSE)


@dataclass(frozen=True)
class Ref:
    """A bare identifier: a parameter or a resource symbol."""

    name: str


@dataclass(frozen=True)
class Interp:
    parts: tuple[str | Any, ...]


@dataclass
class Resource:
    symbol: str
    type: str
    api: str
    existing: bool
    body: dict[str, Any]


@dataclass
class BicepFile:
    params: dict[str, tuple[str, Any]] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, tuple[str, Any]] = field(default_factory=dict)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot read Bicep at {text[pos:pos + 40]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append((kind, match.group()))
    return out


class _Reader:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.at] if self.at < len(self.toks) else ("eof", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.at += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok[1] != text:
            raise ValueError(f"expected {text!r}, read {tok[1]!r} (token {self.at})")

    def newlines(self) -> None:
        while self.peek()[0] == "nl":
            self.at += 1

    def file(self) -> BicepFile:
        out = BicepFile()
        while True:
            self.newlines()
            kind, word = self.next()
            if kind == "eof":
                return out
            if word == "targetScope":
                self.expect("=")
                self.value()
            elif word == "param":
                name, bicep_type = self.next()[1], self.next()[1]
                default = None
                if self.peek()[1] == "=":
                    self.next()
                    default = self.value()
                out.params[name] = (bicep_type, default)
            elif word == "resource":
                symbol = self.next()[1]
                type_api = _unquote(self.next()[1])
                existing = self.peek()[1] == "existing"
                if existing:
                    self.next()
                self.expect("=")
                body = self.value()
                arm_type, api = type_api.split("@")
                out.resources[symbol] = Resource(symbol, arm_type, api, existing, body)
            elif word == "output":
                name, bicep_type = self.next()[1], self.next()[1]
                self.expect("=")
                out.outputs[name] = (bicep_type, self.value())
            else:
                raise ValueError(f"unexpected {word!r} at top level")

    def value(self) -> Any:
        kind, word = self.next()
        if word == "{":
            obj: dict[str, Any] = {}
            self.newlines()
            while self.peek()[1] != "}":
                key_kind, key = self.next()
                self.expect(":")
                obj[_unquote(key) if key_kind == "str" else key] = self.value()
                self.newlines()
            self.next()
            return obj
        if word == "[":
            items = []
            self.newlines()
            while self.peek()[1] != "]":
                items.append(self.value())
                self.newlines()
            self.next()
            return items
        if kind == "str":
            base: Any = _interpolated(word[1:-1])
        elif kind == "num":
            base = int(word)
        elif word in ("true", "false"):
            return word == "true"
        elif kind == "id" and self.peek()[1] == "(":
            base = Call(word, self.arguments())
        elif kind == "id":
            base = Ref(word)
        else:
            raise ValueError(f"unexpected {word!r} in a value")
        while self.peek()[1] in (".", "["):
            if self.next()[1] == ".":
                name = self.next()[1]
                base = Call(f".{name}", (base, *self.arguments())) \
                    if self.peek()[1] == "(" else Prop(base, name)
            else:
                base = Index(base, self.value())
                self.expect("]")
        return base

    def arguments(self) -> tuple[Any, ...]:
        self.expect("(")
        args = []
        while self.peek()[1] != ")":
            args.append(self.value())
            if self.peek()[1] == ",":
                self.next()
        self.next()
        return tuple(args)


_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


def _unquote(token: str) -> str:
    parts = _interpolated(token[1:-1])
    if not isinstance(parts, str):
        raise ValueError(f"interpolation where a plain string is needed: {token}")
    return parts


def _interpolated(body: str) -> Any:
    """A Bicep string's text, or an `Interp` of text and expressions."""
    parts: list[Any] = []
    text: list[str] = []
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char == "\\":
            text.append(_ESCAPES[body[pos + 1]])
            pos += 2
        elif body.startswith("${", pos):
            depth, end = 1, pos + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(body[end], 0)
                end += 1
            parts += ["".join(text), _Reader(body[pos + 2:end - 1]).value()]
            text = []
            pos = end
        else:
            text.append(char)
            pos += 1
    parts.append("".join(text))
    return parts[0] if len(parts) == 1 else Interp(tuple(parts))


# --- compiling back to ARM ---------------------------------------------------------------


class Compiler:
    """The Bicep file as the ARM JSON `az bicep build` would write for it."""

    def __init__(self, bicep: BicepFile) -> None:
        self.file = bicep

    def segments(self, symbol: str) -> tuple[Expr, ...]:
        resource = self.file.resources[symbol]
        own = self.expr(resource.body["name"], set())
        parent = resource.body.get("parent")
        if isinstance(parent, Ref):
            return (*self.segments(parent.name), own)
        return (own,)

    def resource_id(self, symbol: str) -> Expr:
        resource = self.file.resources[symbol]
        scope = resource.body.get("scope")
        group: tuple[Expr, ...] = ()
        if resource.existing and isinstance(scope, Call) and scope.name == "resourceGroup":
            group = (self.expr(scope.args[0], set()),)
        return Call("resourceId", (*group, Str(resource.type), *self.segments(symbol)))

    def expr(self, value: Any, used: set[str]) -> Expr:
        if isinstance(value, str):
            return Str(value)
        if isinstance(value, bool) or value is None:
            raise ValueError("a boolean inside an expression is not in the emitted subset")
        if isinstance(value, int):
            return Int(value)
        if isinstance(value, Ref):
            if value.name in self.file.params:
                return Call("parameters", (Str(value.name),))
            raise ValueError(f"a bare resource symbol {value.name} used as a value")
        if isinstance(value, Interp):
            pattern, args = [], []
            for part in value.parts:
                if isinstance(part, str):
                    pattern.append(part.replace("{", "{{").replace("}", "}}"))
                else:
                    pattern.append(f"{{{len(args)}}}")
                    args.append(self.expr(part, used))
            return Call("format", (Str("".join(pattern)), *args))
        if isinstance(value, Index):
            return Index(self.expr(value.base, used), self.expr(value.index, used))
        if isinstance(value, Prop):
            return self._prop(value, used)
        if isinstance(value, Call):
            if value.name.startswith("."):
                target = value.args[0]
                assert isinstance(target, Ref), value
                used.add(target.name)
                api = self.file.resources[target.name].api
                return Call(value.name[1:], (self.resource_id(target.name), Str(api)))
            return Call(value.name, tuple(self.expr(a, used) for a in value.args))
        raise ValueError(f"unexpected value {value!r}")

    def _prop(self, value: Prop, used: set[str]) -> Expr:
        chain: list[str] = []
        base: Any = value
        while isinstance(base, Prop):
            chain.insert(0, base.name)
            base = base.base
        if isinstance(base, Ref) and base.name in self.file.resources:
            used.add(base.name)
            api = Str(self.file.resources[base.name].api)
            rid = self.resource_id(base.name)
            if chain == ["id"]:
                return rid
            if chain[0] == "properties":
                out: Expr = Call("reference", (rid, api))
                chain = chain[1:]
            else:
                out = Call("reference", (rid, api, Str("full")))
            for name in chain:
                out = Prop(out, name)
            return out
        out = self.expr(base, used)
        for name in chain:
            out = Prop(out, name)
        return out

    def value(self, value: Any, used: set[str]) -> Any:
        """A JSON value of the template: expressions as trees, literals as they are."""
        if isinstance(value, dict):
            return {k: self.value(v, used) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, used) for v in value]
        if isinstance(value, (bool, int)) or value is None:
            return value
        return self.expr(value, used)

    def resources(self) -> list[dict[str, Any]]:
        """Declared resources in ARM's shape, `dependsOn` as Bicep works it out."""
        out = []
        for symbol, resource in self.file.resources.items():
            if resource.existing:
                continue
            used: set[str] = set()
            arm: dict[str, Any] = {"type": resource.type, "apiVersion": resource.api}
            segments = self.segments(symbol)
            arm["name"] = segments[0] if len(segments) == 1 else Call(
                "format", (Str("/".join(f"{{{n}}}" for n in range(len(segments)))),
                           *segments))
            for key, value in resource.body.items():
                if key in ("name", "parent", "dependsOn"):
                    if key == "parent":
                        used.add(value.name)
                    continue
                if key == "scope":
                    used.add(value.name)
                    scope = self.file.resources[value.name]
                    segs = self.segments(value.name)
                    kinds = scope.type.split("/")
                    pattern = "/".join([kinds[0], kinds[1], "{0}",
                                        *[f"{k}/{{{n + 1}}}" for n, k in
                                          enumerate(kinds[2:])]])
                    arm["scope"] = Call("format", (Str(pattern), *segs))
                    continue
                arm[key] = self.value(value, used)
            for dependency in resource.body.get("dependsOn", []):
                used.add(dependency.name)
            arm["dependsOn"] = {normal(self.resource_id(s)) for s in used
                                if not self.file.resources[s].existing}
            out.append(arm)
        return out


def read_bicep(text: str) -> BicepFile:
    return _Reader(text).file()


# --- one form for both sides ---------------------------------------------------------------


def normal(expr: Expr) -> Expr:
    """Equal trees for equal meaning: `format()` with literal arguments folded in and
    renumbered, a `format('{0}', x)` as `x`, a pattern with no placeholder as a string."""
    if isinstance(expr, Prop):
        return Prop(normal(expr.base), expr.name)
    if isinstance(expr, Index):
        return Index(normal(expr.base), normal(expr.index))
    if not isinstance(expr, Call):
        return expr
    args = tuple(normal(a) for a in expr.args)
    if expr.name == "format" and isinstance(args[0], Str):
        kept: list[Expr] = []

        def fold(match: re.Match[str]) -> str:
            arg = args[1 + int(match[1])]
            if isinstance(arg, Str):
                return arg.value.replace("{", "{{").replace("}", "}}")
            kept.append(arg)
            return f"{{{len(kept) - 1}}}"

        pattern = re.sub(r"\{(\d+)\}", fold, args[0].value)
        if not kept:
            return Str(pattern.replace("{{", "{").replace("}}", "}"))
        if pattern == "{0}":
            return kept[0]
        return Call("format", (Str(pattern), *kept))
    return Call(expr.name, args)


def normal_arm(value: Any, apis: dict[str, str]) -> Any:
    """A template value with every expression string as a normal tree; `reference(id)`
    without an api version gets the template's own (as Bicep always writes one)."""
    if isinstance(value, dict):
        return {k: normal_arm(v, apis) for k, v in value.items()}
    if isinstance(value, list):
        return [normal_arm(v, apis) for v in value]
    if not isinstance(value, str):
        return value
    return normal(_with_api(parse(value), apis))


def _with_api(expr: Expr, apis: dict[str, str]) -> Expr:
    if isinstance(expr, Prop):
        return Prop(_with_api(expr.base, apis), expr.name)
    if isinstance(expr, Index):
        return Index(_with_api(expr.base, apis), _with_api(expr.index, apis))
    if not isinstance(expr, Call):
        return expr
    args = tuple(_with_api(a, apis) for a in expr.args)
    if expr.name == "reference" and len(args) == 1 and isinstance(args[0], Call):
        kind = next(a for a in args[0].args if isinstance(a, Str) and "/" in a.value)
        assert isinstance(kind, Str)
        args = (args[0], Str(apis[kind.value]))
    return Call(expr.name, args)


def normal_bicep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normal_bicep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal_bicep(v) for v in value]
    if isinstance(value, (Str, Int, Call, Prop, Index)):
        return normal(value)
    return value
