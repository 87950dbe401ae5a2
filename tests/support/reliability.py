"""The real path under test, and the ledger that counts every event through it.

:func:`reliability_stack` starts soketi, a :class:`~.fault_proxy.FaultProxy` in front of
it, the Cloud Tasks emulator and the app under gunicorn whose worker reaches soketi
through the proxy, and a :class:`~.counting_subscriber.CountingSubscriber` on soketi.
:class:`EventStream` posts numbered events to the front end (``POST /push/<channel>/
<event>``) and remembers which were accepted; :func:`settle` waits until each accepted
event is delivered or parked; :class:`Figures` is what a test writes to
``test-output/reliability/<name>.json`` (the numbers of ``RELIABILITY.md``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from pusherlib import Pusher

from .appserver import ADMIN_HEADERS, AppServer, running_stack
from .counting_subscriber import CountingSubscriber
from .credentials import PUBLISHER_HEADERS
from .emulator import TasksEmulator
from .fault_proxy import FaultProxy
from .figures import write_figures
from .soketi import Soketi

CHANNEL, EVENT = "reliability", "counted"
MAX_RESENDS = 600
USER = {"id": "reliability-counter"}


@dataclass
class Stack:
    """The running parts of the path."""

    soketi: Soketi
    proxy: FaultProxy
    emulator: TasksEmulator
    app: AppServer
    subscriber: CountingSubscriber


@contextmanager
def reliability_stack(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    soketi_running: bool = True,
    through_proxy: bool = True,
    secret: str = "test-secret",
) -> Iterator[Stack]:
    """The whole path, its worker behind the proxy (``env`` adds app settings).

    ``soketi_running=False`` leaves soketi stopped (and no subscriber yet connected);
    ``through_proxy=False`` points the worker at soketi itself.
    """
    soketi = Soketi(secret=secret, name=f"{name}-soketi")
    if soketi_running:
        soketi.start()
    proxy = FaultProxy(soketi.port).start()
    pusher_url = soketi.url.replace(f":{soketi.port}/", f":{proxy.port}/") if through_proxy else soketi.url
    signer = Pusher.from_url(soketi.url)
    subscriber = CountingSubscriber(
        soketi.ws_url, CHANNEL, EVENT, signin=lambda socket_id: signer.authenticate_user(socket_id, USER)
    )
    try:
        with running_stack({"PUSHER_URL": pusher_url, **(env or {})}, name=f"{name}-app") as stack:
            if soketi_running:
                subscriber.start()
            try:
                yield Stack(soketi, proxy, stack.emulator, stack.app, subscriber)
            finally:
                subscriber.stop()
    finally:
        proxy.stop()
        soketi.stop()


class EventStream:
    """Posts events ``{"id": "<prefix>-<n>"}`` to the front end; remembers the accepted ids."""

    def __init__(self, app: AppServer, prefix: str):
        self.app, self.prefix = app, prefix
        self.accepted: list[str] = []
        self.refused: dict[int, int] = {}  # status -> how many posts got it
        self.posted_at: dict[str, float] = {}
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def post(self, count: int, *, resend_refused: bool = False, client: httpx.Client | None = None) -> None:
        """Post ``count`` new events; with ``resend_refused`` one refused for now (503, or no
        answer) is sent again, as a client told "not accepted" would, for up to ~30 s."""
        for _ in range(count):
            event_id = f"{self.prefix}-{next(self._numbers)}"
            for _ in range(MAX_RESENDS):
                status = self.post_one(event_id, client)
                if status == 202 or not resend_refused or status not in (0, 503):
                    break
                time.sleep(0.05)

    def post_paced(self, count: int, interval: float) -> threading.Thread:
        """Post ``count`` events, one every ``interval`` seconds, in a thread (started);
        refused ones are sent again."""

        def run() -> None:
            with httpx.Client(base_url=self.app.url, timeout=10, headers=PUBLISHER_HEADERS) as client:
                for _ in range(count):
                    self.post(1, resend_refused=True, client=client)
                    time.sleep(interval)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def post_concurrently(self, count: int, threads: int) -> None:
        """Post ``count`` events from ``threads`` clients at once (refused ones sent again)."""
        shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]

        def run(share: int) -> None:
            with httpx.Client(base_url=self.app.url, timeout=30, headers=PUBLISHER_HEADERS) as client:
                self.post(share, resend_refused=True, client=client)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, shares))

    def post_one(self, event_id: str, client: httpx.Client | None = None) -> int:
        """Post one event; return the status (0: no answer). 202 means accepted."""
        started = time.monotonic()
        try:
            response = (client or self.app.client).post(f"/push/{CHANNEL}/{EVENT}", json={"id": event_id})
            status = response.status_code
        except httpx.TransportError:
            status = 0
        with self._lock:
            if status != 202:
                self.refused[status] = self.refused.get(status, 0) + 1
                return status
            self.accepted.append(event_id)
            self.posted_at[event_id] = started
        return status


def parked_ids(app: AppServer) -> list[str]:
    """The event ids in the parked tasks (``GET /admin/parked``), one entry per parked copy."""
    response = app.client.get("/admin/parked", params={"limit": 1000}, headers=ADMIN_HEADERS)
    response.raise_for_status()
    ids = []
    for task in response.json()["parked"]:
        body = json.loads(task["body"])
        events = body if isinstance(body, list) else [{"data": task["body"]}]
        ids.extend(str(json.loads(event["data"])["id"]) for event in events)
    return ids


def acknowledged_ids(proxy: FaultProxy) -> set[str]:
    """The event ids soketi accepted (answered 200 without an error body), heard or not."""
    ids = set()
    for exchange in list(proxy.exchanges):
        if exchange.status != 200 or b'"error"' in exchange.answer or not exchange.body:
            continue
        request = json.loads(exchange.body)
        for event in request.get("batch", [request]):
            data = json.loads(event["data"])
            if isinstance(data, dict) and "id" in data:
                ids.add(str(data["id"]))
    return ids


def settle(stack: Stack, accepted: list[str], timeout: float = 60, idle: float = 5) -> list[str]:
    """Wait until each accepted id was delivered, parked, or at least acknowledged by soketi,
    and the queue is empty; or until the queue has been empty for ``idle`` seconds with
    nothing new arriving (or ``timeout``). Return the parked ids."""
    deadline = time.monotonic() + timeout
    progress, progress_at = -1, time.monotonic()
    while True:
        parked = parked_ids(stack.app)
        ended = stack.subscriber.seen() | set(parked) | acknowledged_ids(stack.proxy)
        queue_empty = not stack.emulator.tasks("pusher")
        now = time.monotonic()
        if len(ended) != progress or not queue_empty:
            progress, progress_at = len(ended), now
        if (set(accepted) <= ended and queue_empty) or now - progress_at > idle or now > deadline:
            return parked
        time.sleep(0.2)


@dataclass
class Figures:
    """One reliability run, as written to ``test-output/reliability/<name>.json``.

    ``lost`` counts accepted events neither delivered, parked nor acknowledged by soketi;
    ``dropped_by_soketi`` those soketi acknowledged but no subscriber received (a soketi
    stopping gracefully closes its websockets before its HTTP API).
    """

    test: str
    fault: str
    sent: int
    accepted: int
    delivered: int
    parked: int
    duplicates: int
    lost: int
    dropped_by_soketi: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def count(
        cls, test: str, fault: str, stream: EventStream, stack: Stack, parked: list[str], **extra: Any
    ) -> Figures:
        accepted = set(stream.accepted)
        seen = stack.subscriber.seen() & accepted
        parked_only = (set(parked) & accepted) - seen
        dropped = (acknowledged_ids(stack.proxy) & accepted) - seen - parked_only
        return cls(
            test=test,
            fault=fault,
            sent=len(stream.accepted) + sum(stream.refused.values()),
            accepted=len(accepted),
            delivered=len(seen),
            parked=len(parked_only),
            duplicates=stack.subscriber.duplicates(accepted),
            lost=len(accepted - seen - parked_only - dropped),
            dropped_by_soketi=len(dropped),
            refused=dict(stream.refused),
            extra={
                **extra,
                "subscriptions": stack.subscriber.subscriptions,
                "disconnections": stack.subscriber.disconnections[:5],
                "lost_ids": sorted(accepted - seen - parked_only - dropped)[:20],
            },
        )

    def write(self, name: str) -> None:
        write_figures(name, asdict(self))
