"""settings.py: every variable read in one place, and a clear error naming a bad one."""

import os
import subprocess
import sys

import pytest

from pusherlib import PusherValueError
from settings import ConfigError, Settings
from tests.support.processes import ROOT

BASE = {"PUSHER_URL": "https://key:secret@api-eu.pusher.com/apps/123", "GOOGLE_CLOUD_PROJECT": "demo"}


def test_defaults_from_a_pusher_url():
    settings = Settings.from_env(BASE)
    assert (settings.pusher.app_id, settings.pusher.key, settings.pusher.host) == (
        "123",
        "key",
        "api-eu.pusher.com",
    )
    assert settings.pusher.ssl and settings.pusher.port == 443
    assert (settings.tasks_backend, settings.queue_name, settings.worker_transport) == (
        "cloudtasks",
        "pusher",
        "http",
    )
    assert not settings.demo_mode


def test_pusher_parts_instead_of_a_url():
    env = {"PUSHER_APP_ID": "7", "PUSHER_KEY": "k", "PUSHER_SECRET": "s", "PUSHER_CLUSTER": "eu"}
    settings = Settings.from_env(
        {**env, "TASKS_BACKEND": "taskqueue", "PUSHER_SSL": "0", "PUSHER_PORT": "8080"}
    )
    assert (settings.pusher.cluster, settings.pusher.ssl, settings.pusher.port) == ("eu", False, 8080)
    assert settings.pusher_client().host == "api-eu.pusher.com"


def test_the_secret_is_not_in_the_repr():
    assert "secret" not in repr(Settings.from_env(BASE)).replace("secret=", "")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"PUSHER_URL": "not a url"}, "PUSHER_URL"),
        ({"PUSHER_URL": ""}, "PUSHER_APP_ID"),
        ({"TASKS_BACKEND": "sqs"}, "TASKS_BACKEND"),
        ({"GOOGLE_CLOUD_PROJECT": ""}, "GOOGLE_CLOUD_PROJECT"),
        ({"PUSHER_TRANSPORT": "carrier-pigeon"}, "PUSHER_TRANSPORT"),
        ({"PUSHER_MAX_ATTEMPTS": "many"}, "PUSHER_MAX_ATTEMPTS"),
        ({"PUSHER_MAX_ATTEMPTS": "0"}, "PUSHER_MAX_ATTEMPTS"),
        ({"PUSHER_TIMEOUT": "soon"}, "PUSHER_TIMEOUT"),
        ({"PUSHER_TIMEOUT": "-1"}, "PUSHER_TIMEOUT"),
        ({"DEMO_MODE": "perhaps"}, "DEMO_MODE"),
        ({"MAX_REQUEST_BYTES": "10"}, "MAX_REQUEST_BYTES"),
        ({"APP_THREADS": "0"}, "APP_THREADS"),
        ({"BODY_READ_TIMEOUT": "0"}, "BODY_READ_TIMEOUT"),
        ({"BODY_READ_TIMEOUT": "forever"}, "BODY_READ_TIMEOUT"),
        ({"CLOUD_TASKS_EMULATOR_HOST": "localhost"}, "CLOUD_TASKS_EMULATOR_HOST"),
        ({"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": "dG9vIHNob3J0"}, "PUSHER_URL"),
    ],
)
def test_a_bad_variable_is_named(extra, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**BASE, **extra})


def test_bad_pusher_parts_are_refused():
    # An app id may be a name (soketi's default is "app-id"), but not one with a space.
    with pytest.raises(ConfigError, match="PUSHER_"):
        Settings.from_env(
            {"PUSHER_APP_ID": "my app", "PUSHER_KEY": "k", "PUSHER_SECRET": "s", "TASKS_BACKEND": "taskqueue"}
        )


def test_a_named_app_id_is_accepted():
    env = {"PUSHER_APP_ID": "app-id", "PUSHER_KEY": "k", "PUSHER_SECRET": "s", "TASKS_BACKEND": "taskqueue"}
    assert Settings.from_env(env).pusher.app_id == "app-id"


def test_max_payload_bytes_reaches_the_client_and_the_enqueue_check():
    env = {**BASE, "PUSHER_MAX_PAYLOAD_BYTES": "20480"}
    client = Settings.from_env(env).pusher_client()
    assert len(client.requests.trigger("c", "e", "x" * 20000).body) > 20000
    with pytest.raises(PusherValueError, match="at most 20480"):
        client.trigger("c", "e", "x" * 20481)
    with pytest.raises(PusherValueError, match="at most 10240"):
        Settings.from_env(BASE).pusher_client().requests.trigger("c", "e", "x" * 10241)


@pytest.mark.parametrize("value", ["big", "0", "-5"])
def test_bad_max_payload_bytes_is_refused(value):
    with pytest.raises(ConfigError, match="PUSHER_MAX_PAYLOAD_BYTES"):
        Settings.from_env({**BASE, "PUSHER_MAX_PAYLOAD_BYTES": value})


def test_an_http_target_makes_the_worker_check_tokens_for_its_origin():
    env = {
        **BASE,
        "TASKS_HTTP_TARGET_URL": "https://worker.example.com",
        "TASKS_OIDC_SERVICE_ACCOUNT": "t@p.iam.gserviceaccount.com",
    }
    assert Settings.from_env(env).oidc_audience == "https://worker.example.com"
    assert Settings.from_env({**env, "TASKS_OIDC_AUDIENCE": "custom"}).oidc_audience == "custom"


@pytest.mark.parametrize("deployed", [{"GAE_ENV": "standard"}, {"K_SERVICE": "pusher-worker"}])
def test_the_local_development_switch_is_refused_where_deployed(deployed):
    with pytest.raises(ConfigError, match="ALLOW_UNVERIFIED_LOCAL_REQUESTS"):
        Settings.from_env({**BASE, "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", **deployed})
    assert not Settings.from_env({**BASE, **deployed}).local_development


def test_only_app_engine_standard_strips_its_headers():
    assert Settings.from_env({**BASE, "GAE_ENV": "standard"}).app_engine_standard
    assert not Settings.from_env({**BASE, "GAE_ENV": "localdev"}).app_engine_standard
    assert not Settings.from_env({**BASE, "K_SERVICE": "worker"}).app_engine_standard
    assert Settings.from_env({**BASE, "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"}).local_development


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "Infinity", "0", "-1"])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused(timeout):
    with pytest.raises(ConfigError, match="PUSHER_TIMEOUT"):
        Settings.from_env({**BASE, "PUSHER_TIMEOUT": timeout})


def test_every_wrong_variable_is_named_at_once():
    env = {"GAE_ENV": "standard", "PUSHER_MAX_ATTEMPTS": "x", "APP_THREADS": "0"}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    message = str(refused.value)
    assert message.startswith("4 settings are wrong:\n- ")
    for name in ("GOOGLE_CLOUD_PROJECT", "PUSHER_APP_ID", "PUSHER_MAX_ATTEMPTS", "APP_THREADS"):
        assert name in message


def test_a_deploy_style_start_with_variables_missing_says_so_without_a_traceback():
    env = {"PATH": os.environ["PATH"], "GAE_ENV": "standard", "PUSHER_TIMEOUT": "soon"}
    run = subprocess.run(
        [sys.executable, "-c", "import main"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("cannot start: 3 settings are wrong:")
    assert all(name in run.stderr for name in ("GOOGLE_CLOUD_PROJECT", "PUSHER_URL", "PUSHER_TIMEOUT"))
