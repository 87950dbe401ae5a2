"""Hypothesis strategies for bad input, shared by the fuzz tests, and :func:`utf8_path`."""

from __future__ import annotations

import json
from urllib.parse import quote, unquote_to_bytes

from hypothesis import strategies as st

CHANNEL_CHARS = "abcXYZ019_-=@,.;"
# Separators of signed strings, controls, non-ASCII letters and an Arabic-Indic digit.
NASTY = ":\n\r\t\x00 #/\\?&%é漢😀\u2028\u0660"
CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
]

valid_channel_names = st.from_regex(
    r"(private-|presence-|private-encrypted-)?[A-Za-z0-9_\-=@,.;]{1,30}", fullmatch=True
)
valid_socket_ids = st.from_regex(r"[0-9]{1,12}\.[0-9]{1,12}", fullmatch=True)
channel_names = st.one_of(
    valid_channel_names,
    valid_channel_names,
    st.text(alphabet=CHANNEL_CHARS + NASTY, max_size=220),
    st.text(max_size=40),
    st.builds(lambda n, c: c * n, st.integers(150, 220), st.sampled_from("a-")),
    st.builds(lambda s: "#server-to-user-" + s, st.text(alphabet=CHANNEL_CHARS + NASTY, max_size=210)),
    st.builds(lambda s: "private-" + s, st.text(alphabet=CHANNEL_CHARS + ":\n", max_size=30)),
    st.builds(lambda s: "presence-" + s, st.text(alphabet=CHANNEL_CHARS + ":\n", max_size=30)),
    st.sampled_from(["private-encrypted-x", "PRIVATE-x", "pr\u0456vate-x", "presence-", "private-"]),
)
socket_ids = st.one_of(
    valid_socket_ids,
    valid_socket_ids,
    st.text(alphabet="0123456789." + NASTY, max_size=30),
    st.sampled_from(["", "1.1:presence-x", "1.1\n", "\u0661.\u0661", "1.1 ", "-1.1"]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _form(fields: dict[str, str]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in fields.items()).encode()


bodies = st.one_of(
    json_values.map(json.dumps).map(str.encode),
    json_values.map(json.dumps).map(str.encode),
    st.binary(max_size=200),
    st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4).map(_form),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(250, 262).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),  # around the depth limit
    st.integers(60_000, 70_000).map(lambda n: b'"' + b"a" * n + b'"'),  # around the 64 KB limit
    st.integers(10_000, 10_500).map(lambda n: json.dumps({"k": "é" * n}).encode()),  # around 10 KB
    st.sampled_from(
        [
            b"",
            b"NaN",
            b'{"a": Infinity}',
            b"1e999",
            b'"\\ud800"',
            b'"\\ud83d\\ude00"',
            b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
            "{}".encode("utf-16"),
            b'{"a": 1, "a": 2}',
            b"a=%ff&b=%zz&&=",
            b"\x00" * 10,
        ]
    ),
)
form_keys = st.sampled_from(
    [
        "socket_id",
        "channel_name",
        "channel_name[0]",
        "channel_name[1]",
        "channel_name[9999]",
        "channel_name[]",
        "x",
    ]
)
form_fields = st.one_of(
    st.fixed_dictionaries({"socket_id": valid_socket_ids, "channel_name": valid_channel_names}),
    st.fixed_dictionaries({"socket_id": socket_ids, "channel_name": channel_names}),
    st.fixed_dictionaries(
        {"socket_id": socket_ids, "channel_name[0]": channel_names},
        optional={"channel_name[1]": channel_names, "channel_name[2]": channel_names},
    ),
    st.dictionaries(form_keys, st.one_of(channel_names, socket_ids), max_size=5),
)
valid_user_names = st.from_regex(r"[A-Za-z0-9_\-=@,.;]{1,20}", fullmatch=True)
user_names = st.one_of(valid_user_names, valid_user_names, st.text(max_size=20))
webhook_events = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["channel_occupied", "member_added", "client_event", "unknown"])},
        optional={"channel": channel_names, "user_id": st.text(max_size=5), "data": json_values},
    ),
    max_size=4,
)


def path_segments(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """URL path segments: names percent-encoded, and raw percent sequences."""
    encoded = names.map(lambda name: quote(name, safe=""))
    return st.one_of(
        encoded,
        encoded,
        encoded,
        st.sampled_from(["%ff", "%C3%28", "%", "%zz", "a%00b", "%2F", ".", ".."]),
    )


def utf8_path(*segments: str) -> bool:
    """Whether percent-encoded path segments decode to UTF-8 (the app refuses others, 400)."""
    try:
        for segment in segments:
            unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
