"""app.yaml and queue.yaml read by Google's own parsers, and the settings they name."""

from __future__ import annotations

import pytest
from google.appengine.api import appinfo, queueinfo

from settings import ConfigError, Settings
from tests.support.appserver import AppServer
from tests.support.processes import ROOT


@pytest.fixture(scope="module")
def app_yaml():
    with open(ROOT / "app.yaml") as f:
        return appinfo.LoadSingleAppInfo(f)


@pytest.fixture(scope="module")
def queues():
    with open(ROOT / "queue.yaml") as f:
        return {queue.name: queue for queue in queueinfo.LoadSingleQueue(f).queue}


def test_app_yaml_serves_main_app_with_granian(app_yaml):
    assert app_yaml.runtime.startswith("python3")
    assert app_yaml.entrypoint.startswith("exec granian --interface rsgi ")  # Google adds exec
    assert app_yaml.entrypoint.endswith(" main:rsgi_app")  # main:app behind the body-bounding bridge
    assert app_yaml.app_engine_apis  # `login: admin` needs the bundled services
    assert "warmup" in app_yaml.inbound_services


def test_app_yaml_keeps_admin_pages_for_admins_and_commits_no_secret(app_yaml):
    logins = {handler.url: handler.login for handler in app_yaml.handlers}
    assert logins["/admin/.*"] == "admin"
    assert logins["/worker/.*"] == "admin"  # a second lock: queue tasks pass `login: admin`
    assert logins["/cron/.*"] == "admin"  # the outbox sweeper: cron requests pass it too
    assert app_yaml.handlers[-1].url == "/.*"  # the first match wins: the catch-all comes last
    assert not any(name.startswith("PUSHER_") and "URL" in name for name in app_yaml.env_variables)
    assert "PUSHER_SECRET" not in app_yaml.env_variables
    assert app_yaml.includes == ["secrets.yaml"]


def test_app_yaml_environment_is_accepted_by_the_settings(app_yaml):
    env = {
        **app_yaml.env_variables,
        "PUSHER_URL": "https://k:s@api-eu.pusher.com/apps/1",
        "GOOGLE_CLOUD_PROJECT": "p",
    }
    settings = Settings.from_env(env)
    assert settings.queue_name == "pusher"
    assert settings.tasks_backend == "cloudtasks"


def test_queue_yaml_push_queue_can_never_drop_a_task(queues):
    """Only the worker decides when a task stops: it parks at PUSHER_MAX_ATTEMPTS attempts
    that reached it. The queue's retry limit counts every attempt, those that never reached
    an instance too (a bad deploy), and an age limit drops a task whatever happened, so the
    push queue has neither."""
    pusher = queues["pusher"]
    assert pusher.mode in (None, "push")
    assert pusher.rate and pusher.bucket_size and pusher.max_concurrent_requests
    retry = pusher.retry_parameters
    assert retry.task_retry_limit is None and retry.task_age_limit is None
    assert retry.min_backoff_seconds and retry.max_backoff_seconds and retry.max_doublings is not None


def test_queue_yaml_has_no_parking_queue(queues):
    # Parked events are Datastore entities (pushqueue.parking): no queue expires or resumes them.
    assert sorted(queues) == ["pusher", "pusher-0", "pusher-1", "pusher-2", "pusher-3"]  # and its shards


def test_missing_configuration_names_the_variable():
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        Settings.from_env({"PUSHER_URL": "http://k:s@127.0.0.1:1/apps/1"})


def test_the_app_does_not_start_without_pusher_credentials():
    unset = {name: "" for name in ("PUSHER_URL", "PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET")}
    server = AppServer(unset, name="app-without-credentials")
    logged_before = server.log_path.stat().st_size if server.log_path.exists() else 0
    with pytest.raises((RuntimeError, TimeoutError)):
        server.start(timeout=20)
    server.stop()
    with open(server.log_path, "rb") as log:
        log.seek(logged_before)
        assert b"PUSHER_URL" in log.read()


def test_the_shards_the_settings_send_to_are_declared_like_the_queue_itself(app_yaml, queues):
    settings = Settings.from_env(
        {**app_yaml.env_variables, "PUSHER_URL": "https://k:s@h/apps/1", "GOOGLE_CLOUD_PROJECT": "p"}
    )
    shards = sorted(name for name in queues if name.startswith(f"{settings.queue_name}-"))
    assert len(shards) >= settings.queue_shards  # app.yaml's TASKS_QUEUE_SHARDS fits queue.yaml
    assert shards == [f"{settings.queue_name}-{n}" for n in range(len(shards))]
    base = queues[settings.queue_name]
    for name in shards:
        shard = queues[name]
        assert (shard.rate, shard.bucket_size, shard.max_concurrent_requests) == (
            base.rate,
            base.bucket_size,
            base.max_concurrent_requests,
        )
        assert shard.retry_parameters.__dict__ == base.retry_parameters.__dict__
        assert (
            shard.retry_parameters.task_retry_limit is None and shard.retry_parameters.task_age_limit is None
        )
