"""Who may subscribe to and publish on which channel: one policy, deny by default.

Rules are registered on patterns (``@policy.subscribe("private-orders.{order_id}")``); the first
matching pattern with a rule decides, then the default rule, else no; only ``True`` allows.
Pattern syntax and examples: docs/security.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAMETER_VALUE = r"[-A-Za-z0-9_=@,;]+"


@dataclass(frozen=True)
class Caller:
    """A caller proven to a publishing endpoint: ``kind`` (``"token"``, ``"oidc"``) and ``name``."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Subscription:
    """A socket asking to join ``channel`` (the channel auth endpoint)."""

    request: Any
    channel: str
    socket_id: str


@dataclass(frozen=True)
class Publication:
    """A request to publish ``event`` on ``channel``; ``caller`` is ``None`` when the request
    proved nothing (a browser, say)."""

    request: Any
    channel: str
    event: str
    caller: Caller | None


SubscribeRule = Callable[..., bool]
PublishRule = Callable[..., bool]
Authorizer = Callable[[Any, str, str], bool]  # the older style: (request, channel_name, socket_id)


def from_authorizer(authorizer: Authorizer) -> SubscribeRule:
    """A subscribe rule asking an authorizer of the older style,
    ``authorizer(request, channel_name, socket_id)``."""

    def rule(subscription: Subscription) -> bool:
        return authorizer(subscription.request, subscription.channel, subscription.socket_id) is True

    return rule


@dataclass(frozen=True)
class Decision:
    """A policy's answer, and which rule gave it (for the log line of a refusal)."""

    allowed: bool
    rule: str


class _Pattern:
    """A channel pattern, compiled, with its subscribe and publish rules."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        parts, end = [], 0
        for match in _PARAMETER.finditer(pattern):
            parts.append(re.escape(pattern[end : match.start()]))
            parts.append(f"(?P<{match.group(1)}>{_PARAMETER_VALUE})")
            end = match.end()
        parts.append(re.escape(pattern[end:]))
        try:
            self.regex = re.compile("".join(parts))
        except re.error as exc:  # a parameter named twice
            raise ValueError(f"invalid channel pattern {pattern!r}: {exc}") from None
        self.rules: dict[str, Callable[..., bool]] = {}

    def parameters(self, channel: str) -> dict[str, str] | None:
        match = self.regex.fullmatch(channel)
        return None if match is None else match.groupdict()


class ChannelPolicy:
    """Channel patterns and their subscribe and publish rules (see the module docstring)."""

    def __init__(self) -> None:
        self._patterns: dict[str, _Pattern] = {}
        self._defaults: dict[str, Callable[..., bool]] = {}

    def subscribe(self, pattern: str) -> Callable[[SubscribeRule], SubscribeRule]:
        """Decorator: ``rule(subscription, **parameters)`` decides who joins matching channels."""
        return self._register(pattern, "subscribe")

    def publish(self, pattern: str) -> Callable[[PublishRule], PublishRule]:
        """Decorator: ``rule(publication, **parameters)`` decides who publishes on them."""
        return self._register(pattern, "publish")

    def subscribe_default(self, rule: SubscribeRule) -> SubscribeRule:
        """Register ``rule(subscription)`` for channels that no subscribe pattern matches."""
        self._defaults["subscribe"] = rule
        return rule

    def publish_default(self, rule: PublishRule) -> PublishRule:
        """Register ``rule(publication)`` for channels that no publish pattern matches."""
        self._defaults["publish"] = rule
        return rule

    @property
    def has_subscribe_rules(self) -> bool:
        """Whether any subscription can be allowed at all."""
        return "subscribe" in self._defaults or any("subscribe" in p.rules for p in self._patterns.values())

    def may_subscribe(self, subscription: Subscription) -> Decision:
        """Whether the socket may join the channel."""
        return self._decide("subscribe", subscription.channel, subscription)

    def may_publish(self, publication: Publication) -> Decision:
        """Whether the caller may publish the event on the channel."""
        return self._decide("publish", publication.channel, publication)

    def _register(self, pattern: str, action: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
        compiled = self._patterns.get(pattern) or _Pattern(pattern)
        if action in compiled.rules:
            raise ValueError(f"{pattern!r} already has a {action} rule")

        def register(rule: Callable[..., bool]) -> Callable[..., bool]:
            compiled.rules[action] = rule
            self._patterns.setdefault(pattern, compiled)
            return rule

        return register

    def _decide(self, action: str, channel: str, asked: Subscription | Publication) -> Decision:
        for compiled in self._patterns.values():
            rule = compiled.rules.get(action)
            parameters = compiled.parameters(channel) if rule is not None else None
            if parameters is not None:
                return Decision(rule(asked, **parameters) is True, compiled.pattern)
        default = self._defaults.get(action)
        if default is None:
            return Decision(False, f"no {action} rule matches")
        return Decision(default(asked) is True, f"default {action} rule")
