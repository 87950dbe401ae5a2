"""``pusherlib.strict_json.loads``: JSON as ``json.loads`` reads it, but only real JSON
(no NaN, Infinity or infinite numbers) and nested at most ``MAX_DEPTH`` levels."""

from __future__ import annotations

import json

import pytest

from pusherlib.strict_json import MAX_DEPTH, JSONRefused, loads


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("NaN", "NaN is not a JSON value"),
        ('{"a": Infinity}', "Infinity is not"),
        ("[-Infinity]", "-Infinity is not"),
        ("1e999", "1e999 is out of range"),
        ('{"a": [-1.5e400]}', "-1.5e400 is out of range"),
    ],
)
def test_values_python_reads_but_json_has_not_are_refused(text, says):
    with pytest.raises(JSONRefused, match=says):
        loads(text)


def test_nesting_is_limited_and_the_limit_itself_accepted():
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    for deep in ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), '{"a":' * 100_000 + "1" + "}" * 100_000):
        with pytest.raises(JSONRefused, match=f"nested more than {MAX_DEPTH} levels"):
            loads(deep)


def test_brackets_in_strings_are_not_nesting():
    value = {"text": "[" * 5000 + '\\"{' * 3000, "list": ["]", "[", '"', "\\"]}
    assert loads(json.dumps(value)) == value


def test_what_json_loads_accepts_is_read_the_same():
    for document in (b'{"a": [1, 2.5, -3e10, "\\u00e9"]}', b"\xef\xbb\xbf{}", "[1]".encode("utf-16"), '"é"'):
        assert loads(document) == json.loads(document)


@pytest.mark.parametrize("document", [b"", b"{", b"\xff\xfe{", b"[1,]", b'"\n"'])
def test_other_errors_are_json_loads_value_errors(document):
    with pytest.raises(ValueError) as raised:
        loads(document)
    assert not isinstance(raised.value, JSONRefused)
