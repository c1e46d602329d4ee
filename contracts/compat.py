"""Compatibility of an event schema with its published version.

`breaking_changes(published, current)` compares two JSON Schemas of one (type, version) as the
generator writes them (`contracts/published/` against `contracts/schemas/`). A version once
published is a promise to every subscriber and to every event already in flight or parked:

- a property may not disappear;
- a property's type, format or const may not change, nor its enum lose values;
- no property may become required that was not;
- a nullable property may not become non-nullable;
- bounds (length, range) may not tighten, a pattern may not change, and an object that accepted
  other properties may not start to refuse them.

Adding an optional property is allowed. Anything else needs a new version of the event.
Nested objects, arrays and `$ref`s (resolved in each schema's own document) are compared too.
"""

from __future__ import annotations

from typing import Any

_NULL = "null"
# bound keyword → True when a larger value is tighter
_BOUNDS = {
    "minLength": True, "maxLength": False, "minItems": True, "maxItems": False,
    "minimum": True, "maximum": False, "exclusiveMinimum": True, "exclusiveMaximum": False,
}


def breaking_changes(published: dict, current: dict) -> list[str]:
    """Human-readable breaking changes from `published` to `current`; empty when compatible."""
    problems: list[str] = []
    _compare(published, current, "", (published, current), problems, set())
    return problems


def _resolve(node: Any, root: dict, seen: tuple[str, ...] = ()) -> tuple[Any, tuple[str, ...]]:
    """Follow `$ref`s (JSON pointers into `root`); return the target and the refs followed."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            break
        seen = (*seen, ref)
        target = _pointer(root, ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings} if isinstance(target, dict) else target
    return node, seen


def _pointer(root: dict, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _split_nullable(node: dict) -> tuple[bool, dict]:
    """(accepts null, the schema of its non-null values)."""
    node = dict(node)
    nullable = False
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and any(b == {"type": _NULL} for b in branches):
            nullable = True
            rest = [b for b in branches if b != {"type": _NULL}]
            del node[key]
            if len(rest) == 1 and isinstance(rest[0], dict):
                node = {**rest[0], **node}
            elif rest:
                node[key] = rest
    types = node.get("type")
    if isinstance(types, list) and _NULL in types:
        nullable = True
        rest = [t for t in types if t != _NULL]
        node["type"] = rest[0] if len(rest) == 1 else rest
    if node.get("type") == _NULL:
        nullable = True
        del node["type"]
    if isinstance(node.get("enum"), list) and None in node["enum"]:
        nullable = True
        node["enum"] = [v for v in node["enum"] if v is not None]
    if node.get("nullable") is True:  # OpenAPI 3.0 style
        nullable = True
    node.pop("nullable", None)
    return nullable, node


def _types(node: dict) -> set[str]:
    t = node.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def _show_types(types: set[str]) -> str:
    return " | ".join(sorted(types)) if types else "any"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _compare(published: Any, current: Any, path: str, roots: tuple[dict, dict], problems: list[str],
             visiting: set[tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
    label = path or "(root)"
    p_node, p_refs = _resolve(published, roots[0])
    c_node, c_refs = _resolve(current, roots[1])
    if c_node is True or c_node == {}:
        return  # anything goes now
    if p_node is False:
        return  # nothing was allowed before
    if c_node is False:
        problems.append(f"{label}: no longer accepts any value")
        return
    if not isinstance(p_node, dict) or not isinstance(c_node, dict):
        return

    p_null, p = _split_nullable(p_node)
    c_null, c = _split_nullable(c_node)
    # `anyOf: [{$ref}, {type: null}]` leaves a ref to follow
    p, p_refs = _resolve(p, roots[0], p_refs)
    c, c_refs = _resolve(c, roots[1], c_refs)
    if not isinstance(p, dict) or not isinstance(c, dict):
        return
    if p_refs or c_refs:
        key = (p_refs, c_refs)
        if key in visiting:  # a recursive schema: this pair is being compared further up
            return
        visiting = visiting | {key}
    if p_null and not c_null:
        problems.append(f"{label}: no longer nullable")

    p_types, c_types = _types(p), _types(c)
    if c_types and p_types != c_types:
        problems.append(f"{label}: type changed {_show_types(p_types)} → {_show_types(c_types)}")
        return  # what is nested under a different type says nothing more

    if p.get("format") != c.get("format") and c.get("format") is not None:
        problems.append(f"{label}: format changed {p.get('format') or 'none'} → {c['format']}")
    elif p.get("format") is not None and c.get("format") is None:
        problems.append(f"{label}: format changed {p['format']} → none")

    if "const" in c and p.get("const", object()) != c["const"]:
        problems.append(f"{label}: const changed {p.get('const', 'none')!r} → {c['const']!r}")

    if isinstance(c.get("enum"), list):
        p_enum = p.get("enum")
        if "const" in p:
            p_enum = [p["const"]]
        if not isinstance(p_enum, list):
            problems.append(f"{label}: enum narrowed (now only {_show_values(c['enum'])})")
        else:
            removed = [v for v in p_enum if v not in c["enum"]]
            if removed:
                problems.append(f"{label}: enum narrowed, removed {_show_values(removed)}")

    for keyword, larger_is_tighter in _BOUNDS.items():
        if keyword not in c:
            continue
        before, after = p.get(keyword), c[keyword]
        tighter = before is None or (after > before if larger_is_tighter else after < before)
        if tighter:
            shown = "none" if before is None else before
            problems.append(f"{label}: {keyword} tightened {shown} → {after}")
    if "pattern" in c and p.get("pattern") != c["pattern"]:
        problems.append(f"{label}: pattern changed {p.get('pattern')!r} → {c['pattern']!r}")

    # objects
    p_props = p.get("properties") or {}
    c_props = c.get("properties") or {}
    for name in p_props:
        if name not in c_props:
            problems.append(f"{_child(path, name)}: removed")
    for name in sorted(set(c.get("required") or []) - set(p.get("required") or [])):
        problems.append(f"{_child(path, name)}: newly required")
    if c.get("additionalProperties") is False and p.get("additionalProperties") is not False:
        problems.append(f"{label}: no longer accepts additional properties")
    for name, p_prop in p_props.items():
        if name in c_props:
            _compare(p_prop, c_props[name], _child(path, name), roots, problems, visiting)
    p_extra, c_extra = p.get("additionalProperties"), c.get("additionalProperties")
    if isinstance(p_extra, dict) and isinstance(c_extra, dict):
        _compare(p_extra, c_extra, f"{path}.*" if path else "*", roots, problems, visiting)

    # arrays
    if isinstance(p.get("items"), dict | bool) and isinstance(c.get("items"), dict | bool):
        _compare(p["items"], c["items"], f"{label}[]", roots, problems, visiting)

    # remaining alternatives (other than the null one), compared position by position
    for key in ("anyOf", "oneOf", "allOf"):
        p_alts, c_alts = p.get(key), c.get(key)
        if isinstance(p_alts, list) and isinstance(c_alts, list):
            if len(p_alts) != len(c_alts):
                problems.append(f"{label}: {key} changed ({len(p_alts)} → {len(c_alts)} "
                                "alternatives)")
            else:
                for i, (pa, ca) in enumerate(zip(p_alts, c_alts, strict=True)):
                    _compare(pa, ca, f"{label}<{key}[{i}]>", roots, problems, visiting)


def _show_values(values: list) -> str:
    return ", ".join(repr(v) for v in values)
