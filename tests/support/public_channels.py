"""An ``EXTRA_ROUTE_MODULES`` module that serves no route but lets anyone publish on
``public-<name>`` channels: a test can then reach the rate limit of anonymous callers."""

from __future__ import annotations

from typing import Any


def routes(services: Any) -> list[Any]:
    """No route; a publish rule for ``public-{name}`` that allows every caller."""

    @services.access.policy.publish("public-{name}")
    def anyone_publishes(publication: Any, name: str) -> bool:
        return True

    return []
