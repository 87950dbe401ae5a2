"""Your own handlers next to the app's, without editing ``main.py``: ``EXTRA_ROUTE_MODULES``
names modules, each with a ``routes(services)`` group, served after the app's routes. One
that cannot be imported, or has no ``routes``, stops the start-up naming it.
"""

from __future__ import annotations

import importlib

from handlers.application import RouteGroup
from settings import ConfigError


def route_groups(module_names: tuple[str, ...]) -> tuple[RouteGroup, ...]:
    """The ``routes`` function of each module named in ``EXTRA_ROUTE_MODULES``."""
    groups = []
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"EXTRA_ROUTE_MODULES: cannot import {name!r}: {exc}") from exc
        routes = getattr(module, "routes", None)
        if not callable(routes):
            raise ConfigError(f"EXTRA_ROUTE_MODULES: {name!r} has no routes(services) function")
        groups.append(routes)
    return tuple(groups)
