"""The channel policy: patterns with parameters, first match decides, deny by default, and
the older ``authorizer`` hook mapped onto it (``/pusher/auth`` single and batch)."""

from __future__ import annotations

import pytest

from pusherlib.endpoints import Caller, ChannelPolicy, Publication, PusherHooks, Subscription
from tests.support.endpoints import offline_endpoints, webtest_app

SOCKET = "1234.5678"
SHOP = Caller("token", "shop")


def publication(channel: str, caller: Caller | None = SHOP, event: str = "ev") -> Publication:
    return Publication(request=None, channel=channel, event=event, caller=caller)


def test_nothing_is_allowed_without_a_rule():
    policy = ChannelPolicy()
    assert not policy.may_publish(publication("private-x")).allowed
    assert not policy.may_subscribe(Subscription(None, "private-x", SOCKET)).allowed
    assert not policy.has_subscribe_rules


def test_a_pattern_passes_its_parameters_and_only_true_allows():
    policy = ChannelPolicy()
    seen = []

    @policy.publish("private-orders.{order_id}.{part}")
    def shop_publishes(asked: Publication, order_id: str, part: str) -> object:
        seen.append((asked.caller, order_id, part))
        return "yes" if order_id == "2" else order_id == "1"

    assert policy.may_publish(publication("private-orders.1.lines")).allowed
    assert not policy.may_publish(publication("private-orders.2.lines")).allowed  # truthy is not True
    assert seen == [(SHOP, "1", "lines"), (SHOP, "2", "lines")]
    decision = policy.may_publish(publication("private-orders.1"))  # no match: the default (none)
    assert not decision.allowed and decision.rule == "no publish rule matches"


def test_the_first_matching_pattern_decides_then_the_default():
    policy = ChannelPolicy()
    policy.publish("presence-room.admins")(lambda asked: False)
    policy.publish("presence-room.{room}")(lambda asked, room: True)
    policy.publish_default(lambda asked: asked.caller is not None)
    assert not policy.may_publish(publication("presence-room.admins")).allowed
    assert policy.may_publish(publication("presence-room.lobby")).allowed
    assert policy.may_publish(publication("news")).allowed
    assert not policy.may_publish(publication("news", caller=None)).allowed


def allow_all_orders() -> tuple[ChannelPolicy, list[str]]:
    """A policy whose one pattern allows every order (so only the match can refuse), and
    the order ids its rule saw."""
    policy, seen = ChannelPolicy(), []

    @policy.subscribe("private-orders.{order_id}")
    def anyone(asked: Subscription, order_id: str) -> bool:
        seen.append(order_id)
        return True

    return policy, seen


@pytest.mark.parametrize(
    "channel",
    [
        "private-orders.1.2",  # a parameter does not cross a "."
        "private-orders.1.",
        "private-orders.",
        "xprivate-orders.1",  # the whole name, from its start
        "private-orders.1#",
        "PRIVATE-ORDERS.1",  # patterns match case-sensitively
        "private-Orders.1",
        "Private-orders.1",
    ],
)
def test_a_parameter_matches_one_part_of_the_whole_name_case_sensitively(channel):
    policy, seen = allow_all_orders()
    decision = policy.may_subscribe(Subscription(None, channel, SOCKET))
    assert (decision.allowed, decision.rule, seen) == (False, "no subscribe rule matches", [])


@pytest.mark.parametrize("order_id", ["1", "a-B_9=@,;", "ORDER"])
def test_a_parameter_takes_every_character_of_its_part(order_id):
    policy, seen = allow_all_orders()
    assert policy.may_subscribe(Subscription(None, f"private-orders.{order_id}", SOCKET)).allowed
    assert seen == [order_id]


def test_a_rule_is_registered_once_per_pattern_and_action():
    policy = ChannelPolicy()
    policy.subscribe("private-{room}")(lambda asked, room: True)
    policy.publish("private-{room}")(lambda asked, room: True)
    with pytest.raises(ValueError, match="already"):
        policy.subscribe("private-{room}")(lambda asked, room: False)
    with pytest.raises(ValueError, match="invalid channel pattern"):
        policy.subscribe("private-{a}.{a}")


def test_channel_auth_asks_the_patterns_and_the_older_authorizer():
    endpoints = offline_endpoints()

    @endpoints.policy.subscribe("private-orders.{order_id}")
    def owner_follows(asked: Subscription, order_id: str) -> bool:
        return asked.request.cookies.get("user") == f"owner-of-{order_id}"

    @endpoints.authorizer
    def older_style(request, channel_name, socket_id):
        return channel_name == "presence-lobby"

    app = webtest_app(endpoints)
    app.set_cookie("user", "owner-of-7")
    fields = {
        "socket_id": SOCKET,
        "channel_name[0]": "private-orders.7",
        "channel_name[1]": "private-orders.8",
    }
    fields["channel_name[2]"] = "presence-lobby"
    answers = app.post("/pusher/auth", fields).json
    assert [answers[c]["status"] for c in ("private-orders.7", "private-orders.8", "presence-lobby")] == [
        200,
        403,
        200,
    ]


def test_hooks_share_a_policy_given_to_them():
    policy = ChannelPolicy()
    hooks = PusherHooks(policy)
    hooks.authorizer(lambda request, channel_name, socket_id: True)
    assert policy.may_subscribe(Subscription(None, "private-x", SOCKET)).allowed
