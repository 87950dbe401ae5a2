"""The README's guides, run as written: the seed's handler served through EXTRA_ROUTE_MODULES
by `make dev`'s stack, your own script against that stack (a Pusher client from PUSHER_URL
alone, an event through the queue, a google-cloud-ndb future), and the settings they use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from handlers.extra_routes import route_groups
from scripts.gcloud_local import datastore_emulator_missing
from settings import ConfigError, PusherSettings, Settings
from tests.support.devstack import DevStack
from tests.support.processes import ROOT
from tests.support.subscriber import Subscriber

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def stack():
    with DevStack(name="devstack-guide", env={"EXTRA_ROUTE_MODULES": "examples.seed_handlers"}) as devstack:
        yield devstack


def test_the_seed_handler_queues_an_event_that_reaches_the_browser(stack):
    with Subscriber(stack.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("channel")
        request = urllib.request.Request(stack.app_url + "/my/action", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=20) as response:
            assert (response.status, response.read()) == (200, b"queued")
        assert json.loads(subscriber.event("event", "channel")["data"]) == {"msg": "Hello world!"}


def test_your_own_script_against_the_stack(stack):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "TASKS_"))},
        "PUSHER_URL": f"http://{stack.key}:{stack.secret}@127.0.0.1:{stack.ports['soketi']}/apps/{stack.app_id}",
        "GOOGLE_CLOUD_PROJECT": "local-dev",
        "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{stack.ports['tasks']}",
    }
    if datastore_emulator_missing() is None:  # the stack runs it: the README exports it
        env["DATASTORE_EMULATOR_HOST"] = f"127.0.0.1:{stack.ports['datastore']}"
    with Subscriber(stack.ws_url, timeout=30) as subscriber:
        subscriber.subscribe("own-code")
        argv = [sys.executable, "-m", "examples.own_code"]
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        received = {
            name: json.loads(subscriber.event(name, "own-code")["data"])
            for name in ("direct", "ndb", "queued")
        }
    assert received == {
        "direct": {"how": "straight to Pusher"},
        "ndb": {"how": "an ndb future"},
        "queued": {"how": "through the queue"},
    }


def test_a_pusher_client_needs_only_the_pusher_settings():
    settings = PusherSettings.from_env({"PUSHER_URL": "http://k:s@127.0.0.1:6001/apps/1"})
    assert (settings.app_id, settings.key, settings.host, settings.port) == ("1", "k", "127.0.0.1", 6001)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        Settings.from_env({"PUSHER_URL": "http://k:s@127.0.0.1:6001/apps/1"})  # the whole app needs it


@pytest.mark.parametrize(
    ("modules", "message"),
    [("examples.nowhere", "cannot import 'examples.nowhere'"), ("examples", "has no routes")],
)
def test_an_extra_route_module_that_cannot_serve_stops_the_start_up(modules, message):
    with pytest.raises(ConfigError, match=message):
        route_groups((modules,))


def test_extra_route_modules_are_module_names():
    env = {"PUSHER_URL": "http://k:s@h/apps/1", "TASKS_BACKEND": "taskqueue"}
    assert Settings.from_env({**env, "EXTRA_ROUTE_MODULES": " a.b , c "}).extra_route_modules == ("a.b", "c")
    with pytest.raises(ConfigError, match="EXTRA_ROUTE_MODULES"):
        Settings.from_env({**env, "EXTRA_ROUTE_MODULES": "a/b.py"})
