"""The App Engine stack behind `make appserver`: the app under Google's dev_appserver.py.

Starts the Datastore emulator, soketi and the app under dev_appserver.py (from the gcloud
CLI), waits until each answers, prints what runs where, streams their logs prefixed by
part, and on Ctrl-C (SIGINT) or SIGTERM stops every process group it started. Without
gcloud it says what to install and exits with status 2.

Under dev_appserver the bundled services are real: ``TASKS_BACKEND=taskqueue`` tasks go
through the push queues of ``queue.yaml`` with their retries and backoff, ``login: admin``
pages ask for dev_appserver's sign-in page (``/_ah/login``), ``PUSHER_TRANSPORT=urlfetch``
(``--transport urlfetch``) fetches through its URL Fetch service. Parked events, the
transactional outbox and the webhook replay records go to the Datastore emulator.

dev_appserver runs app.yaml's entrypoint (granian serving ``main:rsgi_app``) in a virtualenv it builds from
requirements.txt: about a minute the first time; the virtualenv is kept in
``--venv-dir`` (default ``$XDG_CACHE_HOME/pusher-appengine/dev_appserver-venv``), so later
starts only check it (about 25 s). It reads a copy of app.yaml written next to it
(``.appserver-<port>.yaml``, removed at exit) without ``includes: secrets.yaml`` and with the
local environment: soketi's credentials, ``TASKS_BACKEND=taskqueue``, ``DEMO_MODE=1``,
``ALLOW_UNVERIFIED_LOCAL_REQUESTS=1`` (dev_appserver sets ``GAE_ENV=localdev``, not
``standard``, and passes ``X-AppEngine-*`` headers from anyone) and
``DATASTORE_EMULATOR_HOST``.

Defaults (flags win; see --help): the app on 127.0.0.1:8080, dev_appserver's admin console
on 8000, soketi on 6001 (metrics 9601) with app id 1, key app-key, secret app-secret, the
Datastore emulator on 8081, project local-dev.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import devstack
from devstack import HOST, ROOT, Part, Stack, StartError
from gcloud_local import gcloud_missing, sdk_root

FIRST_START_TIMEOUT = 300.0  # dev_appserver builds its virtualenv on the first start
IGNORED_BY_WATCHER = (
    r".*/(test-output|\.git|node_modules|\.venv[^/]*|__pycache__|\.pytest_cache|\.hypothesis"
    r"|\.ruff_cache|bench/results|\.appserver-[0-9]+\.yaml)(/.*)?$"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The ports, credentials and options."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--app-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=8000, help="dev_appserver's admin console")
    parser.add_argument("--api-port", type=int, default=0, help="dev_appserver's API server (0: any)")
    parser.add_argument("--soketi-port", type=int, default=6001)
    parser.add_argument("--soketi-metrics-port", type=int, default=9601)
    parser.add_argument("--datastore-port", type=int, default=8081)
    parser.add_argument("--app-id", default="1")
    parser.add_argument("--key", default="app-key")
    parser.add_argument("--secret", default="app-secret")
    parser.add_argument("--pusher-url", help="use this Pusher (or soketi) instead of starting soketi")
    parser.add_argument("--project", default="local-dev")
    parser.add_argument("--transport", choices=("http", "urlfetch", "ndb"), default="http")
    parser.add_argument(
        "--wsgi-app",
        default="main:app",
        help="main:app: app.yaml's entrypoint (main:rsgi_app); another WSGI app: granian's WSGI interface",
    )
    parser.add_argument("--venv-dir", type=Path, default=cache / "pusher-appengine" / "dev_appserver-venv")
    parser.add_argument("--no-reload", action="store_true", help="do not restart the app on file changes")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="more app variables")
    return parser.parse_args(argv)


def pusher_url(args: argparse.Namespace) -> str:
    """The ``PUSHER_URL`` the app uses."""
    return args.pusher_url or f"http://{args.key}:{args.secret}@{HOST}:{args.soketi_port}/apps/{args.app_id}"


def app_environment(args: argparse.Namespace) -> dict[str, str]:
    """The app's variables under dev_appserver (on top of app.yaml's)."""
    env = {
        "PUSHER_URL": pusher_url(args),
        "TASKS_BACKEND": "taskqueue",
        "PUSHER_TRANSPORT": args.transport,
        "DEMO_MODE": "1",
        "ALLOW_UNVERIFIED_LOCAL_REQUESTS": "1",
        "PUSH_TOKENS": f"local-dev:{devstack.LOCAL_PUSH_TOKEN}",  # POST /push needs a publisher token
        "DATASTORE_EMULATOR_HOST": f"{HOST}:{args.datastore_port}",
        "GOOGLE_CLOUD_PROJECT": args.project,
        "PYTHONDONTWRITEBYTECODE": "1",  # a __pycache__ write would restart the instance
        "PYTHONUNBUFFERED": "1",
    }
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def write_app_yaml(args: argparse.Namespace) -> Path:
    """app.yaml for dev_appserver: no ``includes:``, the local environment, the chosen WSGI
    app bound to loopback (dev_appserver proxies to it)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    config = yaml.load((ROOT / "app.yaml").read_text())
    config.pop("includes", None)
    config["env_variables"].update(app_environment(args))
    config["entrypoint"] = local_entrypoint(config["entrypoint"], args.wsgi_app)
    path = ROOT / f".appserver-{args.app_port}.yaml"
    text = io.StringIO()
    yaml.dump(config, text)
    path.write_text(
        "# Written by scripts/appserver.py for dev_appserver.py; removed when it stops.\n" + text.getvalue()
    )
    return path


def local_entrypoint(entrypoint: str, wsgi_app: str) -> str:
    """app.yaml's entrypoint (gunicorn or granian) bound to loopback. ``wsgi_app`` other than
    ``main:app`` (a WSGI app of yours) is served by granian's WSGI interface instead of the
    app's RSGI bridge; ``module:function()`` is an app factory (granian: ``--factory``)."""
    entrypoint = entrypoint.replace("--bind :$PORT", f"--bind {HOST}:$PORT --no-control-socket")  # gunicorn
    entrypoint = entrypoint.replace("--host 0.0.0.0", f"--host {HOST}")  # granian
    if wsgi_app == "main:app":
        return entrypoint
    target = shlex.quote(wsgi_app)  # the entrypoint is run by /bin/sh
    if entrypoint.lstrip().startswith("granian"):
        entrypoint = entrypoint.replace("--interface rsgi", "--interface wsgi").replace("--loop uvloop ", "")
        if wsgi_app.endswith("()"):
            target = "--factory " + shlex.quote(wsgi_app[:-2])
    return re.sub(r"main:(rsgi_)?app\b", lambda _: target, entrypoint)


def app_answers(port: int) -> bool:
    """The app itself answers through dev_appserver (its warmup URL answers 200)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/_ah/warmup", timeout=5) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError):
        return False


def build_parts(args: argparse.Namespace, app_yaml: Path) -> list[Part]:
    """The Datastore emulator, soketi (unless ``--pusher-url``) and dev_appserver."""
    sdk = sdk_root()
    assert sdk is not None, "gcloud_missing() was checked first"
    python = getattr(sys, "_base_executable", sys.executable)  # outside any virtualenv
    appserver_argv = [
        python,
        "-S",  # without site-packages: dev_appserver brings its own libraries
        str(sdk / "platform" / "google_appengine" / "dev_appserver.py"),
        f"--host={HOST}",
        f"--port={args.app_port}",
        f"--admin_host={HOST}",
        f"--admin_port={args.admin_port}",
        f"--api_host={HOST}",
        f"--api_port={args.api_port}",
        f"--application={args.project}",
        "--skip_sdk_update_check=true",
        f"--runtime_python_path={python}",
        f"--python_virtualenv_path={args.venv_dir}",
        f"--watcher_ignore_re={IGNORED_BY_WATCHER}",
        f"--automatic_restart={'no' if args.no_reload else 'yes'}",
        "--max_module_instances=1",  # one process: the demo's task view reads its task log
        str(app_yaml),
    ]
    parts = [devstack.datastore_part(args.datastore_port, args.project)]
    if not args.pusher_url:
        parts.append(soketi_part(args))
    app_ports = {"app": args.app_port, "dev_appserver admin": args.admin_port}
    if args.api_port:
        app_ports["dev_appserver API"] = args.api_port
    parts.append(
        Part(
            "appserver",
            appserver_argv,
            {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
            app_ports,
            lambda: app_answers(args.app_port),
        )
    )
    return parts


def soketi_part(args: argparse.Namespace) -> Part:
    """soketi as `make dev` starts it, on this stack's ports and credentials."""
    flags = {
        "--soketi-port": args.soketi_port,
        "--soketi-metrics-port": args.soketi_metrics_port,
        "--app-id": args.app_id,
        "--key": args.key,
        "--secret": args.secret,
    }
    dev_args = devstack.parse_args([str(item) for pair in flags.items() for item in pair])
    return next(part for part in devstack.build_parts(dev_args) if part.name == "soketi")


def preflight(parts: list[Part]) -> list[str]:
    """What prevents the stack from starting: gcloud missing, then what `make dev` checks
    (installs, ports taken)."""
    missing = gcloud_missing()
    return [missing] if missing is not None else devstack.preflight(parts)


def summary(args: argparse.Namespace) -> list[str]:
    """The lines that say what runs where."""
    app = f"http://{HOST}:{args.app_port}"
    pusher = (
        f"Pusher at {args.pusher_url.split('@')[-1]}"
        if args.pusher_url
        else (
            f"soketi ws://{HOST}:{args.soketi_port} (app {args.app_id}, key {args.key}; metrics on "
            f"{args.soketi_metrics_port})"
        )
    )
    served = "app.yaml's entrypoint: granian, main:rsgi_app" if args.wsgi_app == "main:app" else args.wsgi_app
    return [
        "ready. Open the demo page: " + app + "/",
        f"  app        {app}  ({served}, under dev_appserver.py, TASKS_BACKEND=taskqueue, "
        f"PUSHER_TRANSPORT={args.transport}, DEMO_MODE=1)",
        f"  sign in    {app}/_ah/login  (dev_appserver's page: tick 'Sign in as Administrator' "
        "for /admin/...)",
        f"  admin      http://{HOST}:{args.admin_port}  (dev_appserver's console: task queues, cron)",
        f"  publish    curl -H 'Authorization: Bearer {devstack.LOCAL_PUSH_TOKEN}' "
        f"-H 'Content-Type: application/json' -d '{{\"n\": 1}}' {app}/push/my-channel/my-event",
        f"  pusher     {pusher}",
        f"  datastore  Datastore emulator on {HOST}:{args.datastore_port} (project {args.project}, "
        "in memory: parked events, outbox, webhook records)",
        f"  virtualenv {args.venv_dir}",
        "Press Ctrl-C to stop everything.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Start the stack, wait for Ctrl-C or SIGTERM, stop it; the exit status."""
    args = parse_args(argv)
    stack = Stack()
    missing = gcloud_missing()
    if missing is not None:
        stack.say(f"cannot start: {missing}", "appserver")
        return 2
    app_yaml = write_app_yaml(args)
    try:
        parts = build_parts(args, app_yaml)
        problems = preflight(parts)
        if problems:
            for problem in problems:
                stack.say(f"cannot start: {problem}", "appserver")
            return 2
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: stack.stopping.set())
        devstack.START_TIMEOUT = FIRST_START_TIMEOUT  # Stack.start's wait for each part
        try:
            for part in parts:
                stack.start(part)
            for line in summary(args):
                stack.say(line, "appserver")
            status = stack.run_until_stopped()
        except StartError as exc:
            stack.say(f"cannot start: {exc}", "appserver")
            status = 0 if stack.stopping.is_set() else 1
        finally:
            stack.say("stopping", "appserver")
            stack.stop_all()
        return status
    finally:
        app_yaml.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
