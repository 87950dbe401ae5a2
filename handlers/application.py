"""The app: the services its handlers share, and :class:`Application`, which routes queue
tasks to the worker core and everything else to webapp2 (in a coalescing scope, see
:mod:`pushqueue.coalesce`). A route group is a module's ``routes(services)``; errors are
answered by :mod:`handlers.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import webapp2
import webob

import pushqueue
from access import Access, oidc
from handlers import wiring, worker
from handlers.base import form_refusal
from handlers.errors import Refused, error_answer, wsgi_answer
from handlers.wiring import access_for
from handlers.worker import TaskCore
from pusherlib import Pusher
from pushqueue import logs
from pushqueue.datastore import NdbClients, NdbContextMiddleware
from pushqueue.events import EventQueue
from pushqueue.parking import ParkingStore
from pushqueue.tasks import Backend
from pushqueue.wire import WORKER_PATH_PREFIX
from pushqueue.worker import Worker
from settings import Settings


@dataclass(frozen=True)
class Services:
    """What handlers use: the settings, the event queue, the worker, the check of Cloud Tasks'
    OIDC tokens (``None`` without ``TASKS_OIDC_AUDIENCE``), the trust decisions of :mod:`access`."""

    settings: Settings
    events: EventQueue
    worker: Worker
    oidc_verifier: oidc.OidcVerifier | None
    access: Access
    parking: ParkingStore | None = None  # where parked events wait (pushqueue.parking)
    ndb: NdbClients | None = None  # the process's google-cloud-ndb client

    @property
    def backend(self) -> Backend:
        """The queue service the events go to and parked tasks wait in."""
        return self.events.backend

    @property
    def pusher(self) -> Pusher:
        """The process's one Pusher client: the worker sends with it, the auth endpoints sign."""
        return self.worker.pusher


RouteGroup = Callable[[Services], Iterable[webapp2.BaseRoute]]
TASK_ROUTE = ("POST", WORKER_PATH_PREFIX)  # served by the worker core, before webapp2


class Request(webapp2.Request):
    """webapp2's request, with bodies up to 1 MB kept in memory (webapp2 sets 0: a
    temporary file for every body, which costs more than the rest of a worker request)."""

    request_body_tempfile_limit = 1024 * 1024

    @property
    def POST(self) -> Any:
        """WebOb's form fields; 400 (:class:`webob.exc.HTTPBadRequest`, answered in JSON)
        where the body cannot be read as UTF-8 form fields, instead of WebOb's exception."""
        refused = form_refusal(self)
        if refused is None:
            try:
                return super().POST
            except (ValueError, LookupError):  # a malformed multipart body
                refused = "the form body cannot be read"
        raise webob.exc.HTTPBadRequest(explanation=refused)


class Application(webapp2.WSGIApplication):
    """A ``webapp2.WSGIApplication`` with :class:`Services` and request-scoped coalescing."""

    request_class = Request
    # Cloud Tasks may send PATCH tasks too: they must reach the worker (which parks them).
    allowed_methods = webapp2.WSGIApplication.allowed_methods | frozenset({"PATCH"})

    def __init__(self, routes: Sequence[webapp2.BaseRoute], services: Services, *, app_engine_apis: bool):
        super().__init__(list(routes))
        self.services = services
        self.task_core = TaskCore(services)
        for status in (400, 403, 404, 405, 500):
            self.error_handlers[status] = _json_error
        routed: Any = pushqueue.CoalescingMiddleware(
            super().__call__, services.events, error_answer=_queue_error
        )
        if services.ndb is not None and services.settings.parked_store == "datastore":
            routed = NdbContextMiddleware(routed, services.ndb)
        self._routed = routed
        # What the server may answer on its event loop (main.rsgi_app): nothing where a
        # request needs App Engine's bundled services (wrap_wsgi_app sets them up).
        self.loop_routes = {} if app_engine_apis else {TASK_ROUTE: self.task_core.serve_on_loop}
        pipeline: Any = self._route
        if app_engine_apis:
            from google.appengine.api import wrap_wsgi_app

            pipeline = wrap_wsgi_app(pipeline)
        self._pipeline = pipeline

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not _utf8_path(environ):
            return _refuse(environ, start_response, 400, "the URL path is not UTF-8 once percent-decoded")
        if environ.get("REQUEST_METHOD") not in self.allowed_methods:
            return _refuse(environ, start_response, 501, "this server serves no such method")
        return self._pipeline(environ, start_response)

    def _route(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Queue tasks (:data:`TASK_ROUTE`) to the worker core, the rest to webapp2 in a
        coalescing scope (and an NDB context): see [docs/server.md](../docs/server.md)."""
        if environ["REQUEST_METHOD"] == TASK_ROUTE[0] and environ.get("PATH_INFO", "").startswith(
            TASK_ROUTE[1]
        ):
            return self.task_core.wsgi(environ, start_response)
        return self._routed(environ, start_response)

    def proves_itself(self, environ: dict[str, Any]) -> bool:
        """Whether the headers alone prove a queue task or a ``PUSH_TOKENS`` publisher (the
        server admits bodies by it: :mod:`handlers.rsgi_bridge`)."""
        settings = self.services.settings
        if worker.proven_headers(environ, settings, None) is not None:
            return True
        publishers = self.services.access.publishers
        return publishers.token_caller(environ.get("HTTP_AUTHORIZATION")) is not None


def create_services(settings: Settings) -> Services:
    """The process's services, around one Pusher client (see :mod:`handlers.wiring`)."""
    pusher = settings.pusher_client()
    clients = wiring.ndb_clients_for(settings)
    parking = wiring.parking_for(settings, clients)
    events = wiring.event_queue_for(settings, wiring.backend_for(settings, parking), pusher, clients)
    worker = Worker(
        pusher,
        events.backend,
        max_attempts=settings.max_attempts,
        async_context=wiring.ndb_context_for(settings),
        loop_pusher=wiring.loop_pusher_for(settings),
    )
    return Services(
        settings, events, worker, wiring.verifier_for(settings), access_for(settings), parking, clients
    )


def create_app(
    settings: Settings, route_groups: Iterable[RouteGroup], *, app_engine_apis: bool | None = None
) -> Application:
    """The app serving ``route_groups``, its event queue ``pushqueue``'s default;
    ``app_engine_apis`` (default: the settings use a bundled service) wraps it for them."""
    logs.configure()
    if app_engine_apis is None:
        app_engine_apis = settings.tasks_backend == "taskqueue" or settings.worker_transport == "urlfetch"
    services = create_services(settings)
    pushqueue.configure(services.events)
    routes = [route for group in route_groups for route in group(services)]
    return Application(routes, services, app_engine_apis=app_engine_apis)


def _utf8_path(environ: dict[str, Any]) -> bool:
    """Whether the request's path (WSGI: its bytes as latin-1) is UTF-8, as webapp2 needs."""
    path = environ.get("PATH_INFO", "")
    if path.isascii():
        return True
    try:
        path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _path_for_log(environ: dict[str, Any]) -> str:
    """The request's path as text whatever its bytes (undecodable ones as ``\\xff``)."""
    return environ.get("PATH_INFO", "").encode("latin-1", "replace").decode("utf-8", "backslashreplace")[:300]


def _refuse(
    environ: dict[str, Any], start_response: Callable[..., Any], status: int, message: str
) -> list[bytes]:
    """Answer ``status`` with ``{"error": message}`` before routing, logged as one line."""
    logs.log(logging.INFO, "request refused: " + message, path=_path_for_log(environ))
    return wsgi_answer(error_answer(Refused(message, status)), start_response)


def _queue_error(message: str) -> tuple[list[tuple[str, str]], bytes]:
    """The 503 that replaces an answer whose events cannot be queued (see :mod:`pushqueue.coalesce`)."""
    _, headers, body = error_answer(Refused(message, 503))
    return headers, body


def _json_error(
    request: webapp2.Request, response: webapp2.Response, exception: Exception
) -> webapp2.Response:
    """webapp2's error handler: WebOb's HTTP errors and unexpected ones as :mod:`handlers.errors` answers."""
    path = _path_for_log(request.environ)
    if isinstance(exception, webob.request.DisconnectionError):  # nobody is left to answer
        logs.log(logging.INFO, "request dropped: the client went away", path=path)
        exception = Refused("the client went away before sending the whole body")
    elif isinstance(exception, webob.exc.HTTPException) and exception.code != 500:
        allow = exception.headers.get("Allow")
        message = exception.explanation or f"{exception.code} {HTTPStatus(exception.code).phrase}"
        exception = Refused(message, exception.code, [("Allow", allow)] if allow else ())
    status, headers, body = error_answer(exception, path)
    response.status_int = status
    response.headers.update(headers)
    response.body = body
    return response
