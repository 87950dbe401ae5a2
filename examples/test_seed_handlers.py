"""A test of your own handler, as you would write it: the fake queue records what it queues.
Runs with pytest alone, no emulator: `pytest examples/test_seed_handlers.py`."""

import pytest
import webapp2
import webtest

from examples import seed_handlers
from pushqueue.testing import fake_queue


@pytest.fixture
def app():
    return webtest.TestApp(webapp2.WSGIApplication(seed_handlers.routes(None)))


def test_the_action_queues_hello_world(app):
    with fake_queue() as queue:
        assert app.post("/my/action").text == "queued"
    queue.assert_pushed("channel", "event", {"msg": "Hello world!"}, times=1)
    queue.assert_not_pushed("other-channel")


def test_an_assertion_that_does_not_hold_fails_with_what_was_queued(app):
    with fake_queue() as queue:
        app.post("/my/action")
    with pytest.raises(AssertionError, match="'event' on 'channel'"):
        queue.assert_pushed("channel", "event", {"msg": "Goodbye"})
