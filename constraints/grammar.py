"""Whole-answer grammars: ``json``, ``json-schema:FILE`` and ``regex:"PATTERN"``.

The answer as a whole is one JSON value (an object by default) or matches a pattern.
These rules only say *what* is allowed: a JSON schema (``schema``) or a regular
expression (``pattern``).  The decoder (studio/masks/grammar.py) hands either to the
grammar engine; ``check`` here verifies the finished text with other tools altogether
(``json.loads``, ``jsonschema``, ``re.fullmatch``), so a fault in the engine cannot hide
from the checker.

``json`` takes one optional argument, the kind of value:

- ``json`` / ``json:object``: an object with at least one member, whose string values
  are not empty (an answer, not ``{}``);
- ``json:array``: a non-empty array;
- ``json:any``: any JSON value (a bare string or number too).

The JSON is written compactly (no line breaks or indentation), the way the grammar engine
spells it by default: whitespace is where a small model rambles.

This module never imports torch (nor the grammar engine).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from constraints.base import (
    SpecError,
    TextConstraint,
    Violation,
    quote_arg,
    register,
    require_arg,
    shown,
)

# What each json: kind asks for, as a JSON schema.  An object or array that must not be
# empty, with non-empty strings, so the rule cannot be met by an empty shell.
_NON_EMPTY_STRING = {"minLength": 1}
JSON_KINDS: dict[str, dict] = {
    "object": {"type": "object", "minProperties": 1, "additionalProperties": _NON_EMPTY_STRING},
    "array": {"type": "array", "minItems": 1, "items": _NON_EMPTY_STRING},
    "any": {},
}

SCHEMA_BYTES = 1_000_000  # a schema file larger than this is not a schema a writer wrote
# Schemas shipped with Perec, found by bare file name when no such file is here
# (json-schema:answer.json, the registry's example).
BUNDLED = Path(__file__).resolve().parent / "schemas"


class GrammarRule(TextConstraint):
    """A rule on the whole answer that a grammar engine can hold: ``schema`` (a JSON
    schema) or ``pattern`` (a regular expression), exactly one of them."""

    schema: dict | None = None
    pattern: str | None = None


def _json_violation(rule: str, text: str) -> tuple[object, list[Violation]]:
    """(the parsed value, []) or (None, [why the text is not one JSON value])."""
    try:
        return json.loads(text), []
    except json.JSONDecodeError as e:
        return None, [Violation(min(e.pos, len(text)), len(text), rule, f"not valid JSON: {e.msg}")]


def _schema_violations(rule: str, schema: dict, value: object, text: str) -> list[Violation]:
    import jsonschema  # only checks that need a schema pay for it

    validator = jsonschema.Draft202012Validator(schema)
    return [Violation(0, len(text), rule, f"JSON schema: {e.message}")
            for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))]


class JsonRule(GrammarRule):
    """The whole answer is one JSON value valid against ``schema``."""

    def check(self, text: str) -> list[Violation]:
        value, bad = _json_violation(self.spec(), text)
        return bad or _schema_violations(self.spec(), self.schema, value, text)


class Json(JsonRule):
    """The whole answer is one JSON value of the given kind (see the module notes)."""

    def __init__(self, kind: str = "object"):
        if kind not in JSON_KINDS:
            raise SpecError(f"'json': unknown kind {shown(kind)} (use {', '.join(JSON_KINDS)})")
        self.kind = kind
        self.schema = JSON_KINDS[kind]

    def spec(self) -> str:
        return "json" if self.kind == "object" else f"json:{self.kind}"

    def describe(self) -> str:
        return {"object": "a JSON object", "array": "a JSON array", "any": "one JSON value"}[self.kind]


class JsonSchema(JsonRule):
    """The whole answer is JSON valid against a JSON Schema read from a file (once, when
    the spec is parsed: a later edit of the file does not change the rule)."""

    def __init__(self, path: str, schema: dict):
        self.path = path
        self.schema = schema

    @classmethod
    def from_file(cls, path: str) -> "JsonSchema":
        name = f"json-schema:{path}"
        p = Path(path).expanduser()
        if not p.exists() and p.name == path and (BUNDLED / path).is_file():
            p = BUNDLED / path
        try:
            size = p.stat().st_size
            if size > SCHEMA_BYTES:
                raise SpecError(f"'{name}': the schema file is {size} bytes (at most {SCHEMA_BYTES})")
            schema = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(f"'{name}': no such schema file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"'{name}': cannot read the schema file ({type(e).__name__})") from None
        except json.JSONDecodeError as e:
            raise SpecError(f"'{name}': the schema file is not JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(schema, dict):
            raise SpecError(f"'{name}': a schema must be a JSON object")
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise SpecError(f"'{name}': not a valid JSON schema ({e.message})") from None
        return cls(path, schema)

    def spec(self) -> str:
        return f"json-schema:{quote_arg(self.path)}"

    def describe(self) -> str:
        return f"JSON valid against {self.path}"


class Regex(GrammarRule):
    """The whole answer matches a regular expression (``re.fullmatch``)."""

    def __init__(self, pattern: str):
        try:
            self._re = re.compile(pattern)
        except re.error as e:
            raise SpecError(f"'regex': {shown(pattern)} is not a valid pattern ({e.msg})") from None
        self.pattern = pattern

    def spec(self) -> str:
        # Always a quoted literal (a JSON string, the spec language's literal): a pattern
        # is full of characters that would end or split a bare argument.
        return "regex:" + json.dumps(self.pattern, ensure_ascii=False)

    def describe(self) -> str:
        return f"the whole text matches {shown(self.pattern)}"

    def check(self, text: str) -> list[Violation]:
        if self._re.fullmatch(text):
            return []
        return [Violation(0, len(text), self.spec(), f"the text does not match {shown(self.pattern)}")]


@register("json", description="The whole answer is one JSON value: an object with at least one "
          "member by default; json:array, json:any for others.", example="json", level="text")
def _json(arg):
    return Json(arg.strip().lower() if arg and arg.strip() else "object")


@register("json-schema", description="The whole answer is JSON valid against the JSON Schema in FILE "
          "(answer.json, shipped with Perec: an answer and a confidence).",
          example="json-schema:answer.json", level="text")
def _json_schema(arg):
    return JsonSchema.from_file(require_arg("json-schema", arg))


@register("regex", description="The whole answer matches the regular expression.",
          example='regex:"[a-z ]+[.]"', level="text")
def _regex(arg):
    return Regex(require_arg("regex", arg))
