"""google.api.http path templates: parse `/v2/{parent=projects/*/catalogs/*}:write` and
match URL paths against them.

The grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

Matching works on the raw (still percent-encoded) path, so an encoded `/` inside
a segment stays inside it; captured values are decoded afterwards the way the
spec says: completely for a one-segment variable, all but `%2F` for a
multi-segment one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SEGMENT = r"[^/]+"
_SEGMENTS = r"[^/]+(?:/[^/]+)*"
_ENCODED_SLASH = re.compile(r"(%2[fF])")


class TemplateError(ValueError):
    """A path template that does not follow the grammar."""


@dataclass(frozen=True)
class Variable:
    field_path: str  # e.g. "parent" or "product.name"
    multi_segment: bool

    def decode(self, raw: str) -> str:
        """`raw` with its %-escapes decoded; bytes that are not UTF-8 become lone
        surrogates (U+DC80..U+DCFF), which the request refuses naming the field,
        rather than U+FFFD, which would name another resource."""
        if not self.multi_segment:
            return unquote(raw, errors="surrogateescape")
        parts = _ENCODED_SLASH.split(raw)
        # (%2f and %2F are one byte: kept as one spelling, they name one resource)
        return "".join("%2F" if _ENCODED_SLASH.fullmatch(part)
                       else unquote(part, errors="surrogateescape") for part in parts)


def _split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside braces."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"unbalanced '}}' in {text!r}")
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise TemplateError(f"unbalanced '{{' in {text!r}")
    parts.append(text[start:])
    return parts


def _segments_pattern(segments: list[str], where: str) -> str:
    patterns = []
    for segment in segments:
        if segment == "*":
            patterns.append(_SEGMENT)
        elif segment == "**":
            patterns.append(_SEGMENTS)
        elif not segment or any(c in segment for c in "{}*/"):
            raise TemplateError(f"bad segment {segment!r} in {where!r}")
        else:
            patterns.append(re.escape(segment))
    return "/".join(patterns)


@dataclass(frozen=True)
class PathTemplate:
    """A parsed template: `match(raw_path)` returns {field path: decoded value} or None."""

    text: str
    variables: tuple[Variable, ...]
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        """Raises TemplateError for a template outside the grammar."""
        if not text.startswith("/"):
            raise TemplateError(f"template must start with '/': {text!r}")
        body, verb = text[1:], ""
        pieces = _split_top_level(body, ":")
        if len(pieces) > 2:
            raise TemplateError(f"more than one verb in {text!r}")
        if len(pieces) == 2:
            body, verb = pieces
            if not verb or "/" in verb:
                raise TemplateError(f"bad verb in {text!r}")
        variables: list[Variable] = []
        patterns = []
        for segment in _split_top_level(body, "/"):
            if segment.startswith("{") and segment.endswith("}"):
                field_path, _, inner = segment[1:-1].partition("=")
                inner_segments = inner.split("/") if inner else ["*"]
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*",
                                    field_path):
                    raise TemplateError(f"bad field path {field_path!r} in {text!r}")
                variables.append(Variable(field_path, len(inner_segments) > 1
                                          or "**" in inner_segments))
                patterns.append(f"(?P<v{len(variables) - 1}>"
                                f"{_segments_pattern(inner_segments, text)})")
            else:
                patterns.append(_segments_pattern([segment], text))
        suffix = ":" + re.escape(verb) if verb else ""
        regex = re.compile("/" + "/".join(patterns) + suffix)
        return cls(text, tuple(variables), regex)

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        return {v.field_path: v.decode(found[f"v{i}"]) for i, v in enumerate(self.variables)}

    def example(self, values: dict[str, str] | None = None) -> str:
        """A path this template matches: variables from `values` when given, else
        each `*` as `x` and `**` as `x/y` (tests build URLs with it)."""
        values = values or {}

        def variable(found: re.Match[str]) -> str:
            return values.get(found[1]) or (found[2] or "*")

        filled = re.sub(r"\{([^=}]+)(?:=([^}]*))?\}", variable, self.text)
        return filled.replace("**", "x/y").replace("*", "x")
