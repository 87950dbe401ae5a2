"""Querying soketi's state: channels_info (with a prefix), channel_info, users_info."""

from __future__ import annotations

from pusherlib import ChannelCounts
from tests.support.soketi import unique
from tests.support.subscriber import Subscriber


def test_channels_info_lists_occupied_channels_by_prefix(pusher, soketi, subscriber):
    prefix = unique("query-") + "-"
    names = [f"{prefix}a", f"{prefix}b", f"{prefix}c=@,.;"]
    for name in names:
        subscriber.subscribe(name)
    subscriber.subscribe(f"elsewhere-{prefix}")

    everything = pusher.channels_info()["channels"]
    assert set(names) | {f"elsewhere-{prefix}"} <= set(everything)

    filtered = pusher.channels_info(prefix_filter=prefix)
    assert set(filtered["channels"]) == set(filtered.channels) == set(names)  # dict and typed access
    assert all(isinstance(counts, ChannelCounts) for counts in filtered.channels.values())
    assert pusher.channels_info(prefix_filter=f"{prefix}zzz") == {"channels": {}}
    # A prefix that needs escaping in the query: soketi checks the signature of its unescaped form.
    assert set(pusher.channels_info(prefix_filter=f"{prefix}c=@,")["channels"]) == {f"{prefix}c=@,.;"}


def test_channels_info_with_presence_prefix_and_attributes(pusher, soketi):
    prefix = unique("presence-q") + "-"
    with Subscriber(soketi.ws_url) as member:
        member.subscribe(
            f"{prefix}room", pusher.authenticate(f"{prefix}room", member.socket_id, {"user_id": "u"})
        )
        answer = pusher.channels_info(prefix, ["user_count"])
    # soketi does not give user_count per channel here (its channel_info does).
    assert list(answer["channels"]) == [f"{prefix}room"]


def test_channel_info_occupied_and_counts(pusher, subscriber, other_subscriber):
    channel = unique("info-")
    assert pusher.channel_info(channel)["occupied"] is False
    subscriber.subscribe(channel)
    other_subscriber.subscribe(channel)
    info = pusher.channel_info(channel, ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 2}
    assert (info.occupied, info.subscription_count, info.user_count) == (True, 2, None)


def test_users_info_of_a_presence_channel_gives_the_ids(pusher, soketi):
    channel = unique("presence-users-")
    with Subscriber(soketi.ws_url) as member:
        member.subscribe(channel, pusher.authenticate(channel, member.socket_id, {"user_id": "u-1"}))
        answer = pusher.users_info(channel)
    assert answer == {"users": [{"id": "u-1"}]} and answer.users == ["u-1"]


def test_users_info_of_an_empty_presence_channel(pusher):
    answer = pusher.users_info(unique("presence-empty-"))
    assert answer == {"users": []} and answer.users == []


def test_channel_info_of_a_user_channel(pusher, subscriber):
    user_id = unique("user-")
    subscriber.signin(pusher.authenticate_user(subscriber.socket_id, {"id": user_id}))
    # The path carries "#" as %23: soketi checks the signature over that same path (a wrong
    # one raises PusherAuthError). soketi does not count a signed-in user's channel as occupied.
    info = pusher.channel_info(f"#server-to-user-{user_id}", ["subscription_count"])
    assert info == {"occupied": False, "subscription_count": 0}
