"""Tool input schemas: what the grammar cannot enforce, and the after-the-fact check that covers it.

xgrammar 0.2.8 compiles most of JSON Schema into the grammar, but some keywords it silently ignores (the output may
break them) or over-constrains (valid inputs become impossible). Both lists below were measured against the
installed version by compiling each keyword and replaying one valid and one invalid instance. Callers log the
findings; `validate_tool_input` (jsonschema, Draft 2020-12) is the check that holds whatever the grammar did.
"""
from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

# Accepted by xgrammar, not enforced: an output may violate them.
IGNORED_KEYWORDS = ("uniqueItems", "if", "then", "else", "not", "dependentSchemas", "dependentRequired",
                    "contains", "minContains", "maxContains", "$dynamicRef", "$dynamicAnchor")
# Enforced wrongly: xgrammar rejects instances that are valid, so the model may be unable to write one.
OVERCONSTRAINED_KEYWORDS = ("patternProperties", "propertyNames")
# String formats xgrammar knows; any other is accepted but unchecked.
ENFORCED_FORMATS = frozenset({"date", "time", "date-time", "duration", "email", "hostname", "ipv4", "ipv6", "uri",
                              "uri-reference", "uri-template", "uuid", "json-pointer"})
# Regex features xgrammar's regex converter drops (lookaround) or refuses (backreferences).
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_BACKREFERENCE = re.compile(r"\\[1-9]|\\k<")

# Keywords whose value is a schema, or a list / map of schemas: where the walk descends.
_SCHEMA_VALUED = ("items", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "contains",
                  "propertyNames", "not", "if", "then", "else", "additionalItems")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def unsupported_schema_keywords(schema, path: str = "#") -> list[str]:
    """Where `schema` uses something the grammar will not enforce exactly, as "path: keyword (why)" lines."""
    findings: list[str] = []
    _walk(schema, path, findings)
    return findings


def _walk(schema, path: str, findings: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    for keyword in IGNORED_KEYWORDS:
        if keyword in schema:
            findings.append(f"{path}: {keyword} (not enforced by the grammar)")
    for keyword in OVERCONSTRAINED_KEYWORDS:
        if keyword in schema:
            findings.append(f"{path}: {keyword} (the grammar rejects some valid inputs)")
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) > 1:
        findings.append(f"{path}: allOf with {len(schema['allOf'])} branches (only partly enforced)")
    reference = schema.get("$ref")
    if isinstance(reference, str) and not reference.startswith("#"):
        findings.append(f"{path}: $ref {reference!r} (only local references are resolved)")
    format_name = schema.get("format")
    if isinstance(format_name, str) and format_name not in ENFORCED_FORMATS:
        findings.append(f"{path}: format {format_name!r} (not enforced by the grammar)")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        if _LOOKAROUND.search(pattern):
            findings.append(f"{path}: pattern with lookaround (the lookaround is ignored)")
        if _BACKREFERENCE.search(pattern):
            findings.append(f"{path}: pattern with a backreference (cannot be compiled)")
    for keyword in _SCHEMA_VALUED:
        _walk(schema.get(keyword), f"{path}/{keyword}", findings)
    for keyword in _SCHEMA_LISTS:
        branches = schema.get(keyword)
        if isinstance(branches, list):
            for index, branch in enumerate(branches):
                _walk(branch, f"{path}/{keyword}/{index}", findings)
    for keyword in _SCHEMA_MAPS:
        members = schema.get(keyword)
        if isinstance(members, dict):
            for name, member in members.items():
                _walk(member, f"{path}/{keyword}/{name}", findings)


def grammar_schema(schema: dict) -> dict:
    """The schema as the grammar gets it: `$schema` dropped (a dialect URI is not a constraint; clients send
    draft-07 ones that would otherwise select another dialect)."""
    return {key: value for key, value in schema.items() if key != "$schema"}


def validate_tool_input(schema: dict, tool_input) -> list[str]:
    """Every way `tool_input` breaks `schema` (Draft 2020-12, formats checked), as messages; [] when valid.

    A `$schema` key is tolerated and ignored: the input is always judged by 2020-12. A schema that is itself
    invalid is reported as one message rather than raised, so a caller can log it next to the call.
    """
    schema = grammar_schema(schema)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [f"the input schema is invalid: {error.message}"]
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(tool_input), key=lambda error: [str(part) for part in error.path])
    return [_describe(error) for error in errors]


def _describe(error) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or '(root)'}: {error.message}"
