"""The sans-I/O connection core (pusherlib.transports.core) on its own: the pool's
bookkeeping and the rules every HTTP driver shares, with no sockets."""

from __future__ import annotations

import pytest

from pusherlib import PusherNotSent, PusherTimeout
from pusherlib.transports.base import Request
from pusherlib.transports.core import (
    IdleConnections,
    NoAnswer,
    Turns,
    exchange_error,
    may_resend,
    not_sent_error,
    turn_deadline,
)

KEY = ("http", "example.com", 80)
OTHER = ("https", "example.com", 443)
REQUEST = Request("POST", "http", "example.com", 80, "/apps/1/events", b"{}", 5.0)


def test_turns_are_taken_up_to_the_limit_per_host_then_waited_for_in_order():
    turns: Turns[str] = Turns(limit=2)
    assert turns.take(KEY) and turns.take(KEY)
    assert not turns.take(KEY)
    assert turns.take(OTHER)  # another host has its own turns
    turns.wait(KEY, "first")
    turns.wait(KEY, "second")
    assert turns.next_waiter(KEY) == "first"  # a released turn goes to the first waiter
    assert turns.next_waiter(KEY) == "second"
    assert turns.next_waiter(KEY) is None
    turns.free(KEY)
    assert turns.take(KEY)


def test_a_free_turn_is_not_taken_past_a_waiter():
    turns: Turns[str] = Turns(limit=1)
    assert turns.take(KEY)
    turns.wait(KEY, "waiting")
    turns.free(KEY)
    assert not turns.take(KEY)  # strict FIFO: the waiter goes first
    assert turns.admit(KEY) == "waiting"
    assert turns.admit(KEY) is None  # no turn left (and no one waiting)
    assert turns.in_flight[KEY] == 1


class Conn:
    def __init__(self, name: str, open_: bool = True):
        self.name, self.open, self.closed = name, open_, False

    def close(self) -> None:
        self.closed = True


def idle(max_idle: int = 2, keep_alive: float = 20.0) -> IdleConnections[Conn]:
    return IdleConnections(max_idle, keep_alive, lambda conn: conn.open, Conn.close)


def test_idle_connections_newest_first_and_bounded():
    pool = idle(max_idle=2)
    first, second, third = Conn("1"), Conn("2"), Conn("3")
    for conn in (first, second, third):
        pool.checkin(KEY, conn)
    assert third.closed and pool.idle_count(KEY) == 2
    assert pool.checkout(KEY) is second
    assert pool.checkout(KEY) is first
    assert pool.checkout(KEY) is None
    assert pool.checkout(OTHER) is None


def test_an_idle_connection_closed_by_the_peer_or_kept_too_long_is_closed_not_handed_out():
    pool = idle()
    dropped = Conn("dropped")
    pool.checkin(KEY, dropped)
    dropped.open = False
    assert pool.checkout(KEY) is None and dropped.closed
    expired = idle(keep_alive=0.0)
    old = Conn("old")
    expired.checkin(KEY, old)
    assert expired.checkout(KEY) is None and old.closed


def test_closing_the_pool_closes_every_idle_connection():
    pool = idle()
    conns = [Conn("a"), Conn("b")]
    pool.checkin(KEY, conns[0])
    pool.checkin(OTHER, conns[1])
    assert sorted(conn.name for conn in pool.close()) == ["a", "b"]
    assert all(conn.closed for conn in conns) and pool.idle_count(KEY) == 0


@pytest.mark.parametrize(
    ("reused", "answer_started", "resend"),
    [(True, False, True), (True, True, False), (False, False, False), (False, True, False)],
)
def test_a_request_is_sent_again_only_after_a_reused_connection_failed_before_answering(
    reused, answer_started, resend
):
    assert may_resend(reused, answer_started) is resend


def test_the_deadline_rule_and_its_errors():
    assert turn_deadline(REQUEST, None, 100.0) == 105.0  # the request's timeout by default
    assert turn_deadline(REQUEST, 0.5, 100.0) == 100.5
    assert isinstance(not_sent_error(REQUEST, 0.5), PusherNotSent)
    assert "within 0.5 s" in str(not_sent_error(REQUEST, 0.5))
    assert isinstance(exchange_error(REQUEST, TimeoutError()), PusherTimeout)
    assert "without answering" in str(exchange_error(REQUEST, NoAnswer()))
