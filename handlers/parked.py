"""The parked-event admin (``/admin/parked...``: list, replay, delete), for administrators
only; a replay or delete posted from another site's page gets 403. Routes and answers:
[docs/operations.md](../docs/operations.md); the store: :mod:`pushqueue.parking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import webapp2

from handlers import parked_page
from handlers.base import AdminHandler, limit_param, query_param
from handlers.errors import BadQuery, Refused
from pushqueue import ParkedTaskNotFound, QueueError
from pushqueue.parking import MAX_INDEXED_CHARS, BadCursor, ParkedFilter, ParkingStore, matching_names

if TYPE_CHECKING:
    from handlers.application import Services

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def routes(services: Services) -> list[webapp2.Route]:
    """The parked-event admin routes."""
    return [
        webapp2.Route("/admin/parked", ParkedListHandler, methods=["GET"]),
        webapp2.Route(parked_page.PAGE_PATH, ParkedPageHandler, methods=["GET"]),
        webapp2.Route("/admin/parked/replay", ReplayMatchingHandler, methods=["POST"]),
        webapp2.Route("/admin/parked/delete", DeleteMatchingHandler, methods=["POST"]),
        webapp2.Route("/admin/parked/<name>/replay", ReplayOneHandler, methods=["POST"]),
        webapp2.Route("/admin/parked/<name>/delete", DeleteOneHandler, methods=["POST"]),
        webapp2.Route("/admin/parked/<name>", DeleteOneHandler, methods=["DELETE"]),
    ]


class ParkedAdminHandler(AdminHandler):
    """Reads the filters; answers the store's errors (400, 404, 503); refuses changes
    asked by another site's page (403)."""

    def dispatch(self) -> Any:
        if self.request.method in ("POST", "DELETE") and from_another_site(self.request):
            return self.send_error(403, "replays and deletions are refused from another site's page")
        return super().dispatch()

    def handle_exception(self, exception: Exception, debug: bool) -> None:
        """The store's errors as refusals: 400 (a bad cursor), 404, 503."""
        if isinstance(exception, BadCursor):
            exception = Refused(str(exception))
        elif isinstance(exception, ParkedTaskNotFound):
            exception = Refused(str(exception), 404)
        elif isinstance(exception, QueueError):
            exception = Refused(f"the parked events cannot be reached: {exception}", 503)
        super().handle_exception(exception, debug)

    @property
    def store(self) -> ParkingStore:
        """Where the parked events are."""
        store = self.services.parking
        assert store is not None, "create_services gives the app a parking store"
        return store

    def limit(self) -> int:
        """How many parked events to list, replay or delete (``?limit=``)."""
        return limit_param(self.request, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)

    def where(self) -> ParkedFilter:
        """The filters of the query string (an empty one is no filter); :class:`BadQuery`
        for one longer than anything indexed."""
        values = [query_param(self.request, p) or None for p in ("channel", "event", "reason")]
        if any(value is not None and len(value) > MAX_INDEXED_CHARS for value in values):
            raise BadQuery(f"channel, event and reason are at most {MAX_INDEXED_CHARS} characters")
        return ParkedFilter(*values)

    def matching(self) -> list[str]:
        """The names of the parked events the filters match, up to ``limit``."""
        return matching_names(self.store, self.where(), self.limit())

    def replay(self, names: list[str]) -> None:
        """Queue the parked events ``names`` again; answer with their names."""
        add = self.services.backend.add
        for name in names:
            self.store.replay(name, add)
        self.answer({"replayed": names})

    def forget(self, names: list[str]) -> None:
        """Forget the parked events ``names``; answer with their names."""
        for name in names:
            self.store.delete(name)
        self.answer({"deleted": names})

    def answer(self, done: dict[str, list[str]]) -> None:
        """``done`` in JSON; or, for the HTML page's forms (``then=page``), back to the page."""
        if query_param(self.request, "then") != "page":
            return self.send_json(200, done)
        kept = {p: v for p in ("channel", "event", "reason") if (v := query_param(self.request, p))}
        return self.redirect(f"{parked_page.PAGE_PATH}?{urlencode(kept)}", code=303)


def from_another_site(request: webapp2.Request) -> bool:
    """Whether a browser sent ``request`` from a page of another site."""
    if request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()


class ParkedListHandler(ParkedAdminHandler):
    """``GET /admin/parked``: one page of the matching parked events."""

    def get(self) -> None:
        page = self.store.page(self.where(), self.limit(), query_param(self.request, "cursor") or None)
        self.send_json(200, {"parked": [task.to_json() for task in page.tasks], "cursor": page.cursor})


class ParkedPageHandler(ParkedAdminHandler):
    """``GET /admin/parked/page``: the same list as an HTML page (its refusals too)."""

    def send_error(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """The refusal as an HTML page."""
        local = self.services.settings.local_development
        self.response.status_int = status
        self.response.headers.update(headers)
        self.response.headers.update(parked_page.SECURITY_HEADERS)
        self.response.content_type = "text/html"
        self.response.text = parked_page.refusal(message, local_hint=local and status == 403)

    def get(self) -> None:
        limit = self.limit()
        page = self.store.page(self.where(), limit, query_param(self.request, "cursor") or None)
        self.response.headers.update(parked_page.SECURITY_HEADERS)
        self.response.content_type = "text/html"
        self.response.text = parked_page.render(page, self.where(), limit)


class ReplayOneHandler(ParkedAdminHandler):
    """``POST /admin/parked/<name>/replay``: one parked event queued again."""

    def post(self, name: str) -> None:
        self.replay([name])


class ReplayMatchingHandler(ParkedAdminHandler):
    """``POST /admin/parked/replay``: every matching parked event queued again."""

    def post(self) -> None:
        self.replay(self.matching())


class DeleteOneHandler(ParkedAdminHandler):
    """``DELETE /admin/parked/<name>`` (``POST /admin/parked/<name>/delete`` from a form):
    one parked event forgotten."""

    def delete(self, name: str) -> None:
        self.forget([name])

    def post(self, name: str) -> None:
        self.forget([name])


class DeleteMatchingHandler(ParkedAdminHandler):
    """``POST /admin/parked/delete``: every matching parked event forgotten (``all=1``
    without a filter)."""

    def post(self) -> None:
        if self.where() == ParkedFilter() and query_param(self.request, "all") != "1":
            raise BadQuery("deleting every parked event needs all=1 (or give channel, event or reason)")
        self.forget(self.matching())
