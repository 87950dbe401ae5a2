"""The foundation: soketi starts, a trigger reaches a websocket subscriber."""

import json


def test_trigger_reaches_a_subscriber(pusher, subscriber):
    subscriber.subscribe("smoke")
    assert pusher.trigger("smoke", "hello", {"n": 1}) == {"ok": True}
    message = subscriber.event("hello", "smoke")
    assert json.loads(message["data"]) == {"n": 1}
