"""A websocket subscriber that counts events by the ``id`` in their data, in a thread.

It signs in (``signin(socket_id)`` gives the user-auth answer), subscribes to one
public channel on soketi and, for every event named ``event``,
records the ``id`` of its JSON data and when it first arrived (``time.monotonic()``, so
the test's own clock gives latencies). When soketi goes away it reconnects and
subscribes again, so a test can stop soketi mid-stream::

    with CountingSubscriber(soketi.ws_url, "reliability") as subscriber:
        ...
        subscriber.wait_for_ids(ids, timeout=30)
        subscriber.duplicates()  # ids seen more than once
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


class CountingSubscriber:
    """Counts events ``event`` on ``channel``; ``counts[id]`` is how many times each came."""

    def __init__(
        self,
        ws_url: str,
        channel: str,
        event: str = "counted",
        signin: Callable[[str], dict[str, str]] | None = None,
    ):
        self.ws_url, self.channel, self.event, self.signin = ws_url, channel, event, signin
        self.counts: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.subscriptions = 0  # how many times the channel was (re)subscribed
        self.disconnections: list[str] = []  # why each connection ended
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ws: ClientConnection | None = None

    # -- what a test asks -----------------------------------------------------------------

    def seen(self) -> set[str]:
        with self._lock:
            return set(self.counts)

    def duplicates(self, ids: Iterable[str] | None = None) -> int:
        """Deliveries beyond the first, over ``ids`` (every id by default)."""
        with self._lock:
            counts = self.counts if ids is None else {i: self.counts[i] for i in ids if i in self.counts}
            return sum(n - 1 for n in counts.values())

    def wait_for_ids(self, ids: Iterable[str], timeout: float) -> set[str]:
        """Wait until every id of ``ids`` arrived (or ``timeout``); return the missing ones."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while (missing := wanted - self.seen()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return missing

    def wait_subscribed(self, timeout: float = 15) -> None:
        if not self.subscribed.wait(timeout):
            raise TimeoutError(f"not subscribed to {self.channel} within {timeout} s")

    # -- the connection thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with connect(self.ws_url, open_timeout=2, close_timeout=1) as ws:
                    self._ws = ws
                    self._serve(ws)
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                if self.subscriptions:
                    self.disconnections.append(repr(exc))
            finally:
                self._ws = None
                self.subscribed.clear()
            self._stopping.wait(0.05)

    def _serve(self, ws: ClientConnection) -> None:
        while not self._stopping.is_set():
            try:
                message = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            name = message.get("event")
            if name == "pusher:connection_established":
                if self.signin is not None:  # a soketi requiring user auth closes others after 30 s
                    socket_id = json.loads(message["data"])["socket_id"]
                    ws.send(json.dumps({"event": "pusher:signin", "data": self.signin(socket_id)}))
                ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": self.channel}}))
            elif name == "pusher_internal:subscription_succeeded":
                self.subscriptions += 1
                self.subscribed.set()
            elif name == "pusher:ping":
                ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
            elif name == self.event and message.get("channel") == self.channel:
                self._count(message.get("data"))

    def _count(self, data: object) -> None:
        now = time.monotonic()
        payload = json.loads(data) if isinstance(data, str) else data
        event_id = str(payload["id"]) if isinstance(payload, dict) and "id" in payload else None
        if event_id is None:
            return
        with self._lock:
            self.counts[event_id] += 1
            self.first_seen.setdefault(event_id, now)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> CountingSubscriber:
        self._thread.start()
        self.wait_subscribed()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> CountingSubscriber:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
