"""Request bodies with a size limit: refused before they are read when declared too large,
after reading at most the limit + 1 bytes when their size is not declared (chunked)."""

from __future__ import annotations

import logging
from typing import IO, Any

import webob

from handlers.errors import BodyTooLarge, Refused
from pushqueue import logs


def read_body(request: webob.Request, limit: int) -> bytes:
    """The body of a WebOb (webapp2) request, or :class:`BodyTooLarge` when above ``limit``
    bytes. The request keeps it: ``request.body`` and ``request.POST`` read it again."""
    length = request.content_length
    if length is not None:
        check_length(length, limit)
        return request.body
    request.body = _read_undeclared(request.body_file_raw, limit)
    return request.body


def read_input(environ: dict[str, Any], limit: int) -> bytes:
    """The body of a WSGI request from ``wsgi.input``, bounded as :func:`read_body` bounds it
    (400 when the client went away before sending the length it declared)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if not (declared.isascii() and declared.isdigit()):
        return _read_undeclared(environ["wsgi.input"], limit)
    length = int(declared)
    check_length(length, limit)
    body = environ["wsgi.input"].read(length) if length else b""
    if len(body) != length:
        logs.log(
            logging.INFO, "request dropped: the client went away", path=environ.get("PATH_INFO", "")[:300]
        )
        raise Refused("the client went away before sending the whole body")
    return body


def check_length(length: int, limit: int) -> None:
    """:class:`BodyTooLarge` when a body of ``length`` bytes is above ``limit``."""
    if length > limit:
        raise BodyTooLarge(f"the body is {length} bytes; at most {limit} are accepted")


def _read_undeclared(stream: IO[bytes], limit: int) -> bytes:
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    return body
