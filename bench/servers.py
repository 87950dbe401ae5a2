"""The servers the worker is measured under: ``app.yaml``'s entrypoint and the candidates.

Every command is a shell command line with ``$PORT``, as ``app.yaml``'s entrypoint is; the
harness (``tests/support/appserver.py``) runs it on a free port. The candidates bind
loopback; the entrypoint runs exactly as App Engine starts it.
"""

from __future__ import annotations

from collections.abc import Mapping

from tests.support.appserver import AppServer, entrypoint

GRANIAN = "granian --interface wsgi --host 127.0.0.1 --port $PORT --no-ws"
GRANIAN_RSGI = "granian --interface rsgi --host 127.0.0.1 --port $PORT --no-ws"
# Candidates (name: command), each serving main:app with 8 threads in all.
CANDIDATES = {
    "gunicorn gthread, 2 workers x 8 threads": (
        "gunicorn --bind 127.0.0.1:$PORT --workers 2 --threads 8 main:app"
    ),
    "gunicorn gthread, 1 worker x 8 threads": (
        "gunicorn --bind 127.0.0.1:$PORT --workers 1 --threads 8 main:app"
    ),
    "granian WSGI, 2 workers x 4 threads": f"{GRANIAN} --workers 2 --blocking-threads 4 main:app",
    "granian WSGI, 1 worker x 8 threads": f"{GRANIAN} --workers 1 --blocking-threads 8 main:app",
    "waitress, 8 threads": "waitress-serve --listen 127.0.0.1:$PORT --threads 8 main:app",
    # The entrypoint's bridge (APP_THREADS: 8) on asyncio's own loop instead of uvloop, and
    # in 2 processes.
    "granian RSGI + bridge, 1 worker, asyncio loop": (
        f"{GRANIAN_RSGI} --workers 1 --loop asyncio main:rsgi_app"
    ),
    "granian RSGI + bridge, 2 workers, uvloop": f"{GRANIAN_RSGI} --workers 2 --loop uvloop main:rsgi_app",
}
SEED_APP = "bench.seed_worker:app"  # served as the entrypoint serves main (:rsgi_app)


def entrypoint_server(env: Mapping[str, str], name: str, app: str | None = None) -> AppServer:
    """The app (or ``app``) started with ``app.yaml``'s entrypoint, processes and threads
    as it sets them."""
    command = entrypoint()
    if app is not None:
        served = command.rsplit(" ", 1)[1].split(":", 1)[1]  # main:rsgi_app: the seed's rsgi_app
        command = command.rsplit(" ", 1)[0] + " " + app.split(":", 1)[0] + ":" + served
    return AppServer(env, command=command, workers=None, threads=None, name=name)


def candidate_server(env: Mapping[str, str], label: str, name: str) -> AppServer:
    return AppServer(env, command=CANDIDATES[label], workers=None, threads=None, name=name)
