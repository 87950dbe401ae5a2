"""Request bodies with a size limit: refused before they are read when declared too large,
after reading at most the limit + 1 bytes when their size is not declared (chunked)."""

from __future__ import annotations

import webob


class BodyTooLarge(Exception):
    """The request body is larger than allowed."""


def read_body(request: webob.Request, limit: int) -> bytes:
    """The body of a WebOb (webapp2) request, or :class:`BodyTooLarge` when above ``limit``
    bytes. The request keeps it: ``request.body`` and ``request.POST`` read it again."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise BodyTooLarge(f"the body is {length} bytes; at most {limit} are accepted")
        return request.body
    body = request.body_file_raw.read(limit + 1)
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    request.body = body
    return body
