"""Typed views of what triggers and queries return: dicts (as the official library returns) with
typed properties such as ``.channels``, ``.batch``, ``.occupied``, ``.users``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar


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


class ChannelsResponse(dict):
    """The answer to :meth:`Pusher.channels_info`: the parsed JSON, plus ``.channels``."""

    @property
    def channels(self) -> dict[str, ChannelCounts]:
        """Each channel's counts (those asked for with ``attributes``)."""
        channels = self.get("channels")
        if not isinstance(channels, dict):
            return {}
        return {name: ChannelCounts.from_json(value) for name, value in channels.items()}


class TriggerResponse(ChannelsResponse):
    """The answer to :meth:`Pusher.trigger`: ``.channels`` is empty unless ``info`` was given."""


class BatchResponse(dict):
    """The answer to :meth:`Pusher.trigger_batch`: the parsed JSON, plus ``.batch``."""

    @property
    def batch(self) -> list[ChannelCounts]:
        """The counts of each event's channel, in the order of the events (empty unless
        some event had ``info``)."""
        batch = self.get("batch")
        return [ChannelCounts.from_json(item) for item in batch] if isinstance(batch, list) else []


class ChannelInfo(dict):
    """The answer to :meth:`Pusher.channel_info`: the parsed JSON, plus typed fields."""

    @property
    def occupied(self) -> bool | None:
        """Whether the channel has subscribers (``None``: not in the answer)."""
        occupied = self.get("occupied")
        return occupied if isinstance(occupied, bool) else None

    @property
    def subscription_count(self) -> int | None:
        return ChannelCounts.from_json(self).subscription_count

    @property
    def user_count(self) -> int | None:
        return ChannelCounts.from_json(self).user_count


class UsersResponse(dict):
    """The answer to :meth:`Pusher.users_info`: the parsed JSON, plus ``.users`` (their ids)."""

    @property
    def users(self) -> list[str]:
        users = self.get("users")
        if not isinstance(users, list):
            return []
        return [str(user["id"]) for user in users if isinstance(user, dict) and "id" in user]


Answer = TypeVar("Answer", bound=dict)


def as_answer(kind: type[Answer], parsed: Any) -> Answer:
    """``parsed`` (a dict, or anything else Pusher answered: then empty) as a ``kind``."""
    return kind(parsed if isinstance(parsed, dict) else {})
