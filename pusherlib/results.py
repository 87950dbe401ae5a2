"""Typed views of what trigger calls return.

Pusher answers ``POST /events`` with ``{"channels": {name: {"subscription_count": N,
"user_count": N}}}`` when ``info`` was asked for, and ``POST /batch_events`` with
``{"batch": [{...}, ...]}`` (one entry per event, in order). The answers stay dicts (the
official library returns dicts) with typed properties on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """A channel's counts as Pusher reported them (``None``: not asked for, or not given)."""

    subscription_count: int | None = None
    user_count: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> ChannelCounts:
        """The counts in one ``{"subscription_count", "user_count"}`` object (others ignored)."""
        fields = value if isinstance(value, dict) else {}
        return cls(_count(fields.get("subscription_count")), _count(fields.get("user_count")))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TriggerResponse(dict):
    """The answer to :meth:`Pusher.trigger`: the parsed JSON, plus ``.channels``."""

    @property
    def channels(self) -> dict[str, ChannelCounts]:
        """Each channel's counts (empty unless ``info`` was given)."""
        channels = self.get("channels")
        if not isinstance(channels, dict):
            return {}
        return {name: ChannelCounts.from_json(value) for name, value in channels.items()}


class BatchResponse(dict):
    """The answer to :meth:`Pusher.trigger_batch`: the parsed JSON, plus ``.batch``."""

    @property
    def batch(self) -> list[ChannelCounts]:
        """The counts of each event's channel, in the order of the events (empty unless
        some event had ``info``)."""
        batch = self.get("batch")
        return [ChannelCounts.from_json(item) for item in batch] if isinstance(batch, list) else []


def as_trigger_response(parsed: Any) -> TriggerResponse:
    """``parsed`` (a dict, or anything else Pusher answered) as a :class:`TriggerResponse`."""
    return TriggerResponse(parsed if isinstance(parsed, dict) else {})


def as_batch_response(parsed: Any) -> BatchResponse:
    """``parsed`` as a :class:`BatchResponse`."""
    return BatchResponse(parsed if isinstance(parsed, dict) else {})
