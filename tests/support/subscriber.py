"""A real websocket subscriber speaking the Pusher protocol to soketi."""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.sync.client import connect

SENTINEL_EVENT = "test-sentinel"


class Subscriber:
    """A connection to soketi: subscribe to channels and collect the events that arrive."""

    def __init__(self, ws_url: str, timeout: float = 5):
        self.timeout = timeout
        self._connection = connect(ws_url, open_timeout=timeout)
        self.ws = self._connection.__enter__()
        established = self._next_message(timeout)
        assert established["event"] == "pusher:connection_established", established
        self.socket_id: str = json.loads(established["data"])["socket_id"]
        self.events: list[dict[str, Any]] = []

    def _next_message(self, timeout: float) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def send(self, event: str, data: Any) -> None:
        self.ws.send(json.dumps({"event": event, "data": data}))

    def subscribe(self, channel: str, auth: dict[str, str] | None = None) -> dict[str, Any]:
        """Subscribe (with an auth answer for private/presence channels); return the
        ``pusher_internal:subscription_succeeded`` message, or raise with soketi's error."""
        self.send("pusher:subscribe", {"channel": channel, **(auth or {})})
        return self.wait_for(
            lambda m: (
                m.get("channel") == channel
                and m["event"] in ("pusher_internal:subscription_succeeded", "pusher:subscription_error")
            )
        )

    def signin(self, answer: dict[str, str]) -> dict[str, Any]:
        """Send ``pusher:signin`` with a user-auth answer; return soketi's reply."""
        self.send("pusher:signin", answer)
        return self.wait_for(lambda m: m["event"] in ("pusher:signin_success", "pusher:error"))

    def wait_for(self, match, timeout: float | None = None) -> dict[str, Any]:
        """The first message (already seen or arriving) for which ``match`` is true."""
        for message in self.events:
            if match(message):
                self.events.remove(message)
                return message
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message within {timeout or self.timeout} s")
            message = self._next_message(remaining)
            if message.get("event") == "pusher:ping":
                self.send("pusher:pong", {})
                continue
            if match(message):
                return message
            self.events.append(message)

    def event(self, name: str, channel: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Wait for event ``name`` (on ``channel``)."""
        return self.wait_for(
            lambda m: m.get("event") == name and (channel is None or m.get("channel") == channel), timeout
        )

    def events_before_sentinel(self, pusher: Any, channel: str) -> list[dict[str, Any]]:
        """Trigger a sentinel event on ``channel`` now (through ``pusher``) and return (and
        consume) the channel's events that arrived before it: what did not arrive by then
        never will (soketi delivers to one connection in order), and no waiting is needed."""
        pusher.trigger(channel, SENTINEL_EVENT, "sentinel")

        def on_channel(message: dict[str, Any]) -> bool:
            return message.get("channel") == channel and not message["event"].startswith("pusher")

        self.wait_for(lambda m: on_channel(m) and m["event"] == SENTINEL_EVENT)
        before = [message for message in self.events if on_channel(message)]
        self.events = [message for message in self.events if not on_channel(message)]
        return before

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
