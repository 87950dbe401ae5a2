"""Configuration that would open a hole stops the app at start-up with a message.

Checked on ``Settings.from_env`` and, from outside, on ``main.py`` started as App Engine or
Cloud Run would start it: the process exits naming the variable.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from settings import ConfigError, Settings
from tests.support.processes import ROOT

BASE = {"PUSHER_URL": "https://key:secret@api-eu.pusher.com/apps/123", "GOOGLE_CLOUD_PROJECT": "demo"}
TOKEN = "a-publisher-token-of-32-characters"
ACCOUNT = "publisher@demo.iam.gserviceaccount.com"

REFUSED = {
    "OIDC audience without account": (
        {"TASKS_OIDC_AUDIENCE": "https://w.example.com"},
        "TASKS_OIDC_SERVICE_ACCOUNT",
    ),
    "DEMO_MODE on App Engine": ({"DEMO_MODE": "1", "GAE_ENV": "standard"}, "DEMO_MODE"),
    "DEMO_MODE on Cloud Run": ({"DEMO_MODE": "1", "K_SERVICE": "pusher"}, "DEMO_MODE"),
    "DEMO_MODE on another GAE_ENV": ({"DEMO_MODE": "1", "GAE_ENV": "flex"}, "DEMO_MODE"),
    "local switch on App Engine": (
        {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "GAE_ENV": "standard"},
        "ALLOW_UNVERIFIED",
    ),
    "local switch on Cloud Run": (
        {"ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "K_SERVICE": "pusher"},
        "ALLOW_UNVERIFIED",
    ),
    "push OIDC audience without accounts": ({"PUSH_OIDC_AUDIENCE": "https://w.example.com"}, "PUSH_OIDC"),
    "push OIDC accounts without audience": ({"PUSH_OIDC_SERVICE_ACCOUNTS": ACCOUNT}, "PUSH_OIDC"),
    "push OIDC account not an email": (
        {"PUSH_OIDC_AUDIENCE": "a", "PUSH_OIDC_SERVICE_ACCOUNTS": "nobody"},
        "PUSH_OIDC_SERVICE_ACCOUNTS",
    ),
    "IAP audience that is a client id": ({"IAP_AUDIENCE": "1-a.apps.googleusercontent.com"}, "IAP_AUDIENCE"),
    "IAP audience with a space": ({"IAP_AUDIENCE": "/projects/1/apps/p "}, "IAP_AUDIENCE"),
    "short push token": ({"PUSH_TOKENS": "svc:short"}, "PUSH_TOKENS"),
    "push token without a name": ({"PUSH_TOKENS": TOKEN}, "PUSH_TOKENS"),
    "push token named twice": ({"PUSH_TOKENS": f"svc:{TOKEN},svc:{TOKEN}x"}, "PUSH_TOKENS"),
    "superscript two": ({"PUSHER_MAX_ATTEMPTS": "²"}, "PUSHER_MAX_ATTEMPTS"),
    "Arabic-Indic three": ({"PUSHER_MAX_ATTEMPTS": "٣"}, "PUSHER_MAX_ATTEMPTS"),
    "signed number": ({"PUSHER_MAX_ATTEMPTS": "+5"}, "PUSHER_MAX_ATTEMPTS"),
    "underscored number": ({"MAX_REQUEST_BYTES": "65_536"}, "MAX_REQUEST_BYTES"),
    "spaced number": ({"PUSH_RATE_LIMIT": " 5"}, "PUSH_RATE_LIMIT"),
    "non-ASCII decimal": ({"PUSHER_TIMEOUT": "\u0661.\u0665"}, "PUSHER_TIMEOUT"),
    "exponent": ({"PUSHER_TIMEOUT": "1e3"}, "PUSHER_TIMEOUT"),
    "superscript port": ({"CLOUD_TASKS_EMULATOR_HOST": "localhost:8²"}, "CLOUD_TASKS_EMULATOR_HOST"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_configuration_that_opens_a_hole_is_refused(case):
    extra, named = REFUSED[case]
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**BASE, **extra})


def test_the_secret_of_a_refused_token_is_not_in_the_message():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({**BASE, "PUSH_TOKENS": "svc:tooshort-secret"})
    assert "tooshort-secret" not in str(refused.value) and "'svc'" in str(refused.value)


def test_what_stays_allowed():
    local = Settings.from_env({**BASE, "DEMO_MODE": "1", "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1"})
    assert local.demo_mode and local.local_development and not local.app_engine_standard
    # dev_appserver.py sets GAE_ENV=localdev: local, and its X-AppEngine-* headers prove nothing.
    appserver = Settings.from_env(
        {**BASE, "DEMO_MODE": "1", "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1", "GAE_ENV": "localdev"}
    )
    assert appserver.demo_mode and appserver.local_development and not appserver.app_engine_standard
    deployed = Settings.from_env({**BASE, "GAE_ENV": "standard", "PUSH_TOKENS": f"svc:{TOKEN}"})
    assert deployed.app_engine_standard and deployed.publishers.tokens == (("svc", TOKEN),)
    assert TOKEN not in repr(deployed)
    pushing = Settings.from_env({**BASE, "PUSH_OIDC_AUDIENCE": "a", "PUSH_OIDC_SERVICE_ACCOUNTS": ACCOUNT})
    assert pushing.publishers.service_accounts == {ACCOUNT}
    for audience in ("/projects/123/apps/my-project", "/projects/123/global/backendServices/456"):
        assert Settings.from_env({**BASE, "IAP_AUDIENCE": audience}).iap_audience == audience


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"DEMO_MODE": "1", "K_SERVICE": "pusher"}, "DEMO_MODE"),
        ({"TASKS_OIDC_AUDIENCE": "https://w.example.com"}, "TASKS_OIDC_SERVICE_ACCOUNT"),
    ],
)
def test_the_app_does_not_start_with_a_hole(extra, named):
    env = {"PATH": "/usr/bin:/bin", **BASE, **extra}
    started = subprocess.run(
        [sys.executable, "-c", "import main"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert started.stderr.startswith("cannot start: ") and named in started.stderr
