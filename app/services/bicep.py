"""The ARM template written as Bicep: the same resources, read off the same dicts.

The Bicep export is not a second description of the deployment: it is the ARM
template (`app.services.export.arm_template`) translated the way Bicep's own
decompiler (`az bicep decompile`) translates it, so the two can never drift:

- `parameters('x')` is the parameter `x`, declared `param x <type> = <default>`;
- `resourceId('T', n...)` of a resource in the template is its symbol's `.id`;
  of one outside it (another group, or one the template does not create) an
  `existing` resource, with `scope: resourceGroup(rg)` when the id names a group;
- `reference(id).p` is `sym.properties.p`, `reference(id, api, 'full').p` is `sym.p`,
  `listKeys(id, api)` is `sym.listKeys()` when the api is the resource's own;
- a child type's `a/b` name becomes `parent: sym` and the last segment;
- an extension resource's relative `scope` is `scope: sym`;
- `format()`/`concat()` become string interpolation;
- `dependsOn` is left to Bicep where the body already names the resource, and
  kept explicit (`dependsOn: [sym]`) where it does not.

Bicep's syntax as on Microsoft Learn: "Resource declaration in Bicep", "Set name
and type for child resources", "Set scope for extension resources", "Parameters in
Bicep", "String interpolation" (learn.microsoft.com/azure/azure-resource-manager/bicep/).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.services.arm_expressions import Call, Expr, Index, Int, Prop, Str, parse

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_ARM_TYPE = {"string": "string", "securestring": "string", "int": "int", "bool": "bool",
             "object": "object", "secureobject": "object", "array": "array"}
# Keys the declaration line or Bicep's own inference carries, not the body.
_HEADER_KEYS = ("type", "apiVersion", "name", "scope", "dependsOn", "comments")


@dataclass(eq=False)
class Symbol:
    """A resource the Bicep file names: declared (from the template) or `existing`."""

    name: str
    type: str
    api: str
    segments: tuple[Expr, ...]
    group: Expr | None = None  # the resource group of an `existing` one elsewhere
    existing: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    parent: Symbol | None = None


def _is_type(expr: Expr) -> bool:
    return isinstance(expr, Str) and "/" in expr.value and "." in expr.value.split("/")[0]


def _split_format(expr: Expr) -> tuple[Expr, ...]:
    """A name's `/`-separated segments (`format('{0}/default', x)` -> (x, 'default'))."""
    if isinstance(expr, Str):
        return tuple(Str(part) for part in expr.value.split("/"))
    if isinstance(expr, Call) and expr.name == "format" and isinstance(expr.args[0], Str):
        out: list[Expr] = []
        for piece in expr.args[0].value.split("/"):
            used = [int(n) for n in _PLACEHOLDER.findall(piece)]
            if not used:
                out.append(Str(piece))
            elif piece == f"{{{used[0]}}}":
                out.append(expr.args[1 + used[0]])
            else:
                renumbered = _renumber(piece, used)
                out.append(Call("format", (Str(renumbered),
                                           *(expr.args[1 + n] for n in used))))
        return tuple(out)
    return (expr,)


def _renumber(piece: str, used: list[int]) -> str:
    """`{3}-{1}` as `{0}-{1}` when the arguments kept are [3, 1]."""
    return _PLACEHOLDER.sub(lambda m: f"{{{used.index(int(m[1]))}}}", piece)


def _symbol_base(arm_type: str) -> str:
    last = arm_type.split("/")[-1]
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("s") and not last.endswith(("ss", "is")):
        last = last[:-1]
    return last[0].lower() + last[1:]


class BicepWriter:
    """Turns one resource-group ARM template into the text of a `main.bicep`."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.params: dict[str, dict[str, Any]] = template.get("parameters", {})
        self.symbols: list[Symbol] = []
        self._taken = set(self.params)
        self._apis = self._api_versions()
        for resource in template.get("resources", []):
            self._declare(resource)

    # -- symbols -------------------------------------------------------------------
    def _api_versions(self) -> dict[str, str]:
        """Each type's api version: a declared resource's, else the first a call names."""
        apis = {r["type"]: r["apiVersion"] for r in self.template.get("resources", [])}
        found: dict[str, str] = {}

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
            elif isinstance(value, str) and value.startswith("["):
                visit(parse(value))

        def visit(expr: Expr) -> None:
            if isinstance(expr, (Prop, Index)):
                visit(expr.base)
            if isinstance(expr, Call):
                if expr.name in ("reference", "listKeys", "listCredentials") \
                        and len(expr.args) > 1 and isinstance(expr.args[0], Call) \
                        and isinstance(expr.args[1], Str):
                    target = self._id_parts(expr.args[0])
                    if target is not None:
                        found.setdefault(target[0], expr.args[1].value)
                for arg in expr.args:
                    visit(arg)

        walk(self.template)
        return {**found, **apis}

    def _fresh(self, base: str) -> str:
        name, number = base, 1
        while name in self._taken:
            number += 1
            name = f"{base}{number}"
        self._taken.add(name)
        return name

    def _declare(self, resource: dict[str, Any]) -> None:
        arm_type = resource["type"]
        segments = _split_format(parse(resource["name"]))
        parent = None
        if arm_type.count("/") > 1:
            parent = self._find(arm_type.rsplit("/", 1)[0], segments[:-1], None)
        self.symbols.append(Symbol(self._fresh(_symbol_base(arm_type)), arm_type,
                                   resource["apiVersion"], segments, body=resource,
                                   parent=parent))

    def _find(self, arm_type: str, segments: tuple[Expr, ...], group: Expr | None,
              ) -> Symbol | None:
        for symbol in self.symbols:
            if (symbol.type.lower(), symbol.segments, symbol.group) == \
                    (arm_type.lower(), segments, group) and (group is None) != symbol.existing:
                return symbol
        for symbol in self.symbols:
            if symbol.existing and (symbol.type.lower(), symbol.segments, symbol.group) == \
                    (arm_type.lower(), segments, group):
                return symbol
        return None

    def _resolve(self, arm_type: str, segments: tuple[Expr, ...], group: Expr | None) -> Symbol:
        """The declared resource, or an `existing` one made the first time it is named."""
        found = self._find(arm_type, segments, group)
        if found is not None:
            return found
        base = _symbol_base(arm_type) + "Existing"
        symbol = Symbol(self._fresh(base), arm_type, self._apis.get(arm_type, ""), segments,
                        group=group, existing=True)
        self.symbols.append(symbol)
        return symbol

    @staticmethod
    def _id_parts(expr: Expr) -> tuple[str, tuple[Expr, ...], Expr | None] | None:
        """`resourceId([rg,] 'T', n...)` as (type, name segments, group)."""
        if not (isinstance(expr, Call) and expr.name == "resourceId"):
            return None
        for at, arg in enumerate(expr.args):
            if _is_type(arg):
                if at > 1:
                    return None  # a subscription id too: not in what the plan emits
                assert isinstance(arg, Str)
                return arg.value, expr.args[at + 1:], expr.args[0] if at == 1 else None
        return None

    def _id_symbol(self, expr: Expr) -> Symbol | None:
        parts = self._id_parts(expr)
        return None if parts is None else self._resolve(*parts)

    def _scope_symbol(self, text: str) -> Symbol:
        """An extension resource's relative scope (`format('NS/type/{0}', n)`)."""
        pieces = _split_format(parse(text))
        if len(pieces) < 3 or len(pieces) % 2 == 0 or not all(
                isinstance(p, Str) for p in pieces[0:2]):
            raise ValueError(f"cannot express the scope {text!r} in Bicep")
        types = [pieces[0], pieces[1], *pieces[3::2]]
        if not all(isinstance(t, Str) for t in types):
            raise ValueError(f"cannot express the scope {text!r} in Bicep")
        arm_type = "/".join(t.value for t in types if isinstance(t, Str))
        return self._resolve(arm_type, tuple(pieces[2::2]), None)

    # -- expressions ---------------------------------------------------------------
    def expr(self, expr: Expr, used: set[str]) -> str:
        """Bicep for one ARM expression; `used` collects the symbols it names."""
        if isinstance(expr, Str):
            return _quote(expr.value)
        if isinstance(expr, Int):
            return str(expr.value)
        if isinstance(expr, Prop):
            return self._prop(expr, used)
        if isinstance(expr, Index):
            return f"{self.expr(expr.base, used)}[{self.expr(expr.index, used)}]"
        return self._call(expr, used)

    def _prop(self, expr: Prop, used: set[str]) -> str:
        chain: list[str] = []
        base: Expr = expr
        while isinstance(base, Prop):
            chain.insert(0, base.name)
            base = base.base
        if isinstance(base, Call) and base.name == "reference" and base.args:
            symbol = self._id_symbol(base.args[0])
            api = base.args[1].value if len(base.args) > 1 and isinstance(
                base.args[1], Str) else None
            full = len(base.args) > 2 and base.args[2] == Str("full")
            if symbol is not None and (api is None or api == symbol.api):
                used.add(symbol.name)
                return ".".join([symbol.name, *([] if full else ["properties"]), *chain])
        return ".".join([self.expr(base, used), *chain])

    def _call(self, expr: Call, used: set[str]) -> str:
        args = expr.args
        if expr.name == "parameters" and isinstance(args[0], Str):
            return args[0].value
        if expr.name == "resourceId":
            symbol = self._id_symbol(expr)
            if symbol is not None:
                used.add(symbol.name)
                return f"{symbol.name}.id"
        if expr.name in ("listKeys", "listCredentials") and len(args) == 2:
            symbol = self._id_symbol(args[0])
            if symbol is not None and args[1] == Str(symbol.api):
                used.add(symbol.name)
                return f"{symbol.name}.{expr.name}()"
        if expr.name == "reference" and args:
            symbol = self._id_symbol(args[0])
            full = len(args) > 2 and args[2] == Str("full")
            if symbol is not None and (len(args) == 1 or args[1] == Str(symbol.api)):
                used.add(symbol.name)
                return symbol.name if full else f"{symbol.name}.properties"
        if expr.name == "format" and args and isinstance(args[0], Str):
            return self._interpolate(args[0].value, args[1:], used)
        if expr.name == "concat" and args:
            return self._interpolate("".join(f"{{{n}}}" for n in range(len(args))), args, used)
        return f"{expr.name}({', '.join(self.expr(a, used) for a in args)})"

    def _interpolate(self, pattern: str, args: tuple[Expr, ...], used: set[str]) -> str:
        out, last = [], 0
        for match in _PLACEHOLDER.finditer(pattern):
            out.append(_escape(pattern[last:match.start()]))
            arg = args[int(match[1])]
            out.append(_escape(arg.value) if isinstance(arg, Str)
                       else "${" + self.expr(arg, used) + "}")
            last = match.end()
        out.append(_escape(pattern[last:]))
        return "'" + "".join(out) + "'"

    # -- values --------------------------------------------------------------------
    def value(self, value: Any, used: set[str], indent: int) -> str:
        pad = "  " * indent
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return json.dumps(value)
        if value is None:
            return "null"
        if isinstance(value, str):
            return self.expr(parse(value), used)
        if isinstance(value, list):
            if not value:
                return "[]"
            items = [f"{pad}  {self.value(v, used, indent + 1)}" for v in value]
            return "[\n" + "\n".join(items) + f"\n{pad}]"
        if not value:
            return "{}"
        items = [f"{pad}  {_key(k)}: {self.value(v, used, indent + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"

    # -- the file ------------------------------------------------------------------
    def text(self) -> str:
        lines: list[str] = []
        note = self.template.get("metadata", {}).get("note")
        lines.append("// Generated by mlcache-deploy from the same plan as its ARM export.")
        if note:
            lines.append(f"// {note}")
        lines += ["targetScope = 'resourceGroup'", ""]
        for name, param in self.params.items():
            bicep_type = _ARM_TYPE[param["type"].lower()]
            secure = "@secure()\n" if param["type"].lower().startswith("secure") else ""
            line = f"{secure}param {name} {bicep_type}"
            if "defaultValue" in param:
                line += f" = {self.value(param['defaultValue'], set(), 0)}"
            lines.append(line)
        lines.append("")
        declared = [s for s in self.symbols if not s.existing]
        bodies = [self._resource(symbol) for symbol in declared]  # may add `existing` ones
        outputs = [self._output(name, out) for name, out in
                   self.template.get("outputs", {}).items()]
        for symbol in self.symbols:
            if symbol.existing:
                lines += [self._existing(symbol), ""]
        for body in bodies:
            lines += [body, ""]
        lines += outputs
        return "\n".join(lines).rstrip("\n") + "\n"

    def _existing(self, symbol: Symbol) -> str:
        used: set[str] = set()
        name = self._name_of(symbol.segments, used)
        out = [f"resource {symbol.name} '{symbol.type}@{symbol.api}' existing = {{",
               f"  name: {name}"]
        if symbol.group is not None:
            out.append(f"  scope: resourceGroup({self.expr(symbol.group, used)})")
        return "\n".join([*out, "}"])

    def _name_of(self, segments: tuple[Expr, ...], used: set[str]) -> str:
        if len(segments) == 1:
            return self.expr(segments[0], used)
        joined = Call("format", (Str("/".join(f"{{{n}}}" for n in range(len(segments)))),
                                 *segments))
        return self.expr(joined, used)

    def _resource(self, symbol: Symbol) -> str:
        body, used = symbol.body, set[str]()
        lines = [f"resource {symbol.name} '{symbol.type}@{symbol.api}' = {{"]
        if symbol.parent is not None:
            lines.append(f"  parent: {symbol.parent.name}")
            used.add(symbol.parent.name)
            lines.append(f"  name: {self.expr(symbol.segments[-1], used)}")
        else:
            lines.append(f"  name: {self._name_of(symbol.segments, used)}")
        if "scope" in body:
            scope = self._scope_symbol(body["scope"])
            used.add(scope.name)
            lines.append(f"  scope: {scope.name}")
        for key, value in body.items():
            if key not in _HEADER_KEYS:
                lines.append(f"  {_key(key)}: {self.value(value, used, 1)}")
        explicit = []
        for dependency in body.get("dependsOn", []):
            target = self._id_symbol(parse(dependency))
            if target is None:
                raise ValueError(f"cannot express the dependency {dependency!r} in Bicep")
            if target.name not in used and target.name not in explicit:
                explicit.append(target.name)
        if explicit:
            lines.append("  dependsOn: [\n" + "\n".join(f"    {n}" for n in explicit) + "\n  ]")
        return "\n".join([*lines, "}"])

    def _output(self, name: str, output: dict[str, Any]) -> str:
        bicep_type = _ARM_TYPE[output["type"].lower()]
        return f"output {name} {bicep_type} = {self.value(output['value'], set(), 0)}"


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def _quote(text: str) -> str:
    return "'" + _escape(text) + "'"


def _key(key: str) -> str:
    return key if _IDENT.match(key) else _quote(key)


def bicep_from_arm(template: dict[str, Any]) -> str:
    """The `main.bicep` text for a resource-group ARM template of the plan."""
    return BicepWriter(template).text()
