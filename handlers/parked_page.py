"""``GET /admin/parked/page``: the parked events as an HTML page for admins, with the same
filters and paging as ``GET /admin/parked``; values escaped, nothing loaded, not framable.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

from pushqueue.parking import ParkedFilter, ParkedPage
from pushqueue.tasks import ParkedTask

PAGE_PATH = "/admin/parked/page"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STYLE = "body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}pre{margin:0}"
HEAD = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Parked events</title>"
    f"<style>{STYLE}</style></head><body><h1>Parked events</h1>"
)


def render(page: ParkedPage, where: ParkedFilter, limit: int) -> str:
    """The HTML of one page of parked events."""
    filters = {name: value for name, value in _filters(where) if value}
    then = urlencode({**filters, "then": "page"})
    rows = "".join(_row(task, then) for task in page.tasks) or '<tr><td colspan="6">none</td></tr>'
    more = ""
    if page.cursor:
        next_page = urlencode({**filters, "limit": limit, "cursor": page.cursor})
        more = f'<p><a href="{PAGE_PATH}?{escape(next_page)}">next page</a></p>'
    inputs = "".join(
        f'<label>{name} <input name="{name}" value="{escape(filters.get(name, ""))}"></label> '
        for name, _ in _filters(where)
    )
    return (
        f'{HEAD}<form method="get" action="{PAGE_PATH}">{inputs}<button>filter</button></form>'
        f"{_button('/admin/parked/replay', then, 'replay all that match')}"
        "<table><tr><th>name</th><th>channels / events</th><th>reason</th><th>parked at</th>"
        f"<th>data</th><th></th></tr>{rows}</table>{more}</body></html>"
    )


def refusal(message: str, *, local_hint: bool) -> str:
    """The HTML of a refusal; ``local_hint``: how to be an admin in local development."""
    hint = (
        "<p>Locally nothing signs you in: send the header yourself, "
        "<code>curl -H 'X-AppEngine-User-Is-Admin: 1' http://127.0.0.1:8080/admin/parked</code>, "
        "or run <code>make appserver</code> and sign in as an administrator at <code>/_ah/login</code>.</p>"
        if local_hint
        else ""
    )
    return f"{HEAD}<p>{escape(message)}</p>{hint}</body></html>"


def _filters(where: ParkedFilter) -> tuple[tuple[str, str | None], ...]:
    return (("channel", where.channel), ("event", where.event), ("reason", where.reason))


def _button(action: str, query: str, label: str) -> str:
    """A form posting to ``action?query`` (both escaped)."""
    return f'<form method="post" action="{escape(action)}?{escape(query)}"><button>{label}</button></form>'


def _row(task: ParkedTask, then: str) -> str:
    listed = task.to_json()
    if listed["body_withheld"]:
        body = "<em>withheld: private-encrypted- channel</em>"
    else:
        body = f"<pre>{escape(listed['body'])}</pre>"
    path = f"/admin/parked/{quote(task.name, safe='')}"
    return (
        f"<tr><td>{escape(task.name)}</td>"
        f"<td>{escape(', '.join(task.channels))}<br>{escape(', '.join(task.events))}</td>"
        f"<td>{escape(task.reason)}</td><td>{escape(str(task.parked_at or ''))}</td><td>{body}</td>"
        f"<td>{_button(f'{path}/replay', then, 'replay')}{_button(f'{path}/delete', then, 'delete')}"
        "</td></tr>"
    )
