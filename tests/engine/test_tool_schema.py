"""Tool input schemas: the keywords the grammar does not enforce, and the jsonschema check after decoding."""
from __future__ import annotations

from tool_fixtures import TICKET

from app.engine.tools.schema import unsupported_schema_keywords, validate_tool_input


def test_supported_schemas_have_no_findings():
    assert unsupported_schema_keywords(TICKET["input_schema"]) == []
    assert unsupported_schema_keywords({"type": "object", "properties": {
        "d": {"type": "string", "format": "date-time"}, "r": {"$ref": "#/$defs/x"},
        "o": {"oneOf": [{"type": "integer"}, {"type": "string"}]}, "a": {"allOf": [{"minimum": 1}]}}}) == []


def test_each_unenforced_keyword_is_found_where_it_is():
    schema = {
        "type": "object",
        "properties": {
            "ids": {"type": "array", "uniqueItems": True, "contains": {"const": 1}},
            "meta": {"type": "object", "patternProperties": {"^x-": {"type": "string"}},
                     "propertyNames": {"maxLength": 3}},
            "when": {"anyOf": [{"type": "string", "format": "iri"}, {"not": {"type": "null"}}]},
            "code": {"type": "string", "pattern": "^(?!tmp)[a-z]+$"},
        },
        "allOf": [{"required": ["ids"]}, {"required": ["when"]}],
        "dependentRequired": {"ids": ["meta"]},
        "$defs": {"x": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"type": "integer"}}},
    }
    assert unsupported_schema_keywords(schema) == [
        "#: dependentRequired (not enforced by the grammar)",
        "#: allOf with 2 branches (only partly enforced)",
        "#/properties/ids: uniqueItems (not enforced by the grammar)",
        "#/properties/ids: contains (not enforced by the grammar)",
        "#/properties/meta: patternProperties (the grammar rejects some valid inputs)",
        "#/properties/meta: propertyNames (the grammar rejects some valid inputs)",
        "#/properties/when/anyOf/0: format 'iri' (not enforced by the grammar)",
        "#/properties/when/anyOf/1: not (not enforced by the grammar)",
        "#/properties/code: pattern with lookaround (the lookaround is ignored)",
        "#/$defs/x: if (not enforced by the grammar)",
        "#/$defs/x: then (not enforced by the grammar)",
        "#/$defs/x: else (not enforced by the grammar)",
    ]


def test_a_valid_input_has_no_errors():
    assert validate_tool_input(TICKET["input_schema"], {"title": "Printer", "priority": "high", "count": 2,
                                                       "owner": {"name": "Sam", "team": "red"}}) == []


def test_every_error_is_listed_with_where_it_is():
    errors = validate_tool_input(TICKET["input_schema"], {"title": "printer", "priority": "high", "count": 9,
                                                         "owner": {"name": "Sam"}, "extra": True})
    assert errors == [
        "(root): Additional properties are not allowed ('extra' was unexpected)",
        "count: 9 is greater than the maximum of 5",
        "owner: 'team' is a required property",
        "title: 'printer' does not match '^[A-Z][a-z]{2,9}$'",
    ]


def test_dialect_uris_are_tolerated_and_formats_checked():
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"at": {"type": "string", "format": "date"}}}
    assert validate_tool_input(draft7, {"at": "2026-11-21"}) == []
    assert validate_tool_input(draft7, {"at": "yesterday"}) == ["at: 'yesterday' is not a 'date'"]
    assert validate_tool_input({"$schema": "urn:unknown", "type": "object"}, {}) == []


def test_an_invalid_schema_is_reported_not_raised():
    (message,) = validate_tool_input({"type": "object", "properties": {"a": {"type": "strng"}}}, {"a": 1})
    assert message.startswith("the input schema is invalid:")
