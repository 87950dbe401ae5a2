"""Parsing JSON from outside strictly: :func:`loads` refuses ``NaN``, ``Infinity``, ``1e999`` and
deep nesting (``json.loads`` accepts or recurses into them) with :class:`JSONRefused`."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 256  # far more than any event needs; far less than the interpreter's recursion limit

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONRefused(ValueError):
    """The text is JSON Python would read, but not JSON to accept (see the module docstring)."""


def loads(document: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(document)``, refusing non-finite numbers and nesting deeper than
    ``max_depth`` (:class:`JSONRefused`); other errors are ``json.loads``'s ``ValueError``."""
    if isinstance(document, (bytes, bytearray)):
        document = document.decode(json.detect_encoding(document), "surrogatepass")
    _check_depth(document, max_depth)
    return json.loads(document, parse_constant=_refuse_constant, parse_float=_finite_float)


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # the common case: too few brackets to nest that deep, strings included
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            raise JSONRefused(f"the JSON is nested more than {max_depth} levels deep")


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONRefused(f"the number {text[:40]} is out of range (it would be infinite)")
    return value
