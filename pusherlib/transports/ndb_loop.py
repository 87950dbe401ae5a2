"""The NDB driver's loop: requests written at once (:mod:`.nonblocking`) and read when the NDB
event loop, idle, wakes on a socket ready. Why this design: BENCHMARKS.md, 'One HTTP engine design'."""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from google.cloud.ndb import context as ndb_context

from .core import (
    HostKey,
    Turns,
    connect_error,
    exchange_error,
    not_sent_error,
    turn_deadline,
)
from .nonblocking import EXCHANGING, Exchange, Exchanges
from .pollers import wait_ready

if TYPE_CHECKING:
    from .ndb import NdbBridge

TURN_SECONDS = 0.02  # one turn of reading answers (other work of the loop waits that long)
LINGER_SECONDS = 0.002  # within a turn, wait this long for more answers
EXPIRY_CHECK_SECONDS = 0.01  # deadlines are checked this often while answers are read
WAKER_MAX_WAIT_SECONDS = 0.1  # a waker wakes at least this often, to fail late requests
WAKER_THREADS = 64  # one per event loop waiting at the same time


def event_loop() -> Any:
    """The current NDB context's event loop, through the public context (its ``queue_rpc``
    is the one hook for a foreign future; tests/pusherlib/test_ndb_bridge.py fails if it changes)."""
    return ndb_context.get_context().eventloop


_drivers: weakref.WeakKeyDictionary[Any, _LoopDriver] = weakref.WeakKeyDictionary()
_wakers: ThreadPoolExecutor | None = None
_wakers_lock = threading.Lock()


def loop_driver() -> _LoopDriver:
    """The driver of the current NDB context's event loop (made when first needed)."""
    loop = event_loop()
    driver = _drivers.get(loop)
    if driver is None or driver.closed:
        driver = _drivers[loop] = _LoopDriver()
    return driver


def _waker_pool() -> ThreadPoolExecutor:
    global _wakers
    if _wakers is None:
        with _wakers_lock:
            if _wakers is None:
                _wakers = ThreadPoolExecutor(WAKER_THREADS, thread_name_prefix="pusherlib-waker")
    return _wakers


class _LoopDriver(Exchanges):
    """The requests in flight from one NDB event loop, and the waker that reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self._turns: dict[NdbBridge, Turns[Exchange]] = {}
        self._waker_armed = False
        self._next_queue_scan = 0.0
        self._next_expiry_check = 0.0
        self._starting_waiting = False

    def add(self, exchange: Exchange) -> None:
        """Send ``exchange`` now, or as soon as one of its bridge's connections is free."""
        bridge = exchange.bridge
        turns = self._turns.get(bridge)
        if turns is None:
            turns = self._turns[bridge] = Turns(bridge.max_connections)
        if turns.take(exchange.key):
            self._start(exchange)
        else:  # until its turn comes, its deadline is the pool timeout's
            start = exchange.deadline - exchange.request.timeout
            exchange.deadline = turn_deadline(exchange.request, bridge.pool_timeout, start)
            turns.wait(exchange.key, exchange)
        if not self._waker_armed:
            self._arm()

    # -- waiting in the event loop ------------------------------------------------------

    def _arm(self) -> None:
        """Have the event loop wait for this driver's connections (one waker at a time)."""
        if self._waker_armed or self.closed:
            return
        if not self._started and not any(
            waiting for turns in self._turns.values() for waiting in turns.waiting.values()
        ):
            self._retire()
            return
        deadlines = [exchange.deadline for exchange in self._started]
        wait = min([WAKER_MAX_WAIT_SECONDS, *(deadline - time.monotonic() for deadline in deadlines)])
        self._waker_armed = True
        waker = _waker_pool().submit(wait_ready, self._poller, max(0.0, wait))
        event_loop().queue_rpc(waker, self._woken)

    def _woken(self, _waker: ThreadFuture[None]) -> None:
        """The waker's callback, in the loop's thread: one turn of reading answers."""
        self._waker_armed = False
        try:
            self._turn()
        finally:
            self._arm()

    def _turn(self) -> None:
        """Read what is ready, then whatever becomes ready within :data:`LINGER_SECONDS`
        of the last answer, until nothing is in flight or :data:`TURN_SECONDS` passed."""
        turn_ends = time.monotonic() + TURN_SECONDS
        poll, poller = self._poller.poll, self._poller
        while self._started:
            ready = poll(LINGER_SECONDS)  # returns at once when something is ready
            if not ready:
                break
            for waiter, events in ready:
                if waiter is None:
                    self._drain_wake_pipe()
                elif waiter is not poller:  # else unregistered since (a stale event)
                    self._ready(waiter, events)
            now = time.monotonic()
            if now >= turn_ends:
                break
            if now >= self._next_expiry_check:
                self._expire(now)
        self._expire(time.monotonic())

    def _retire(self) -> None:
        """Nothing in flight: close the poller and the wake pipe."""
        self.closed = True
        self._close_io()

    def _expire(self, now: float) -> None:
        self._next_expiry_check = now + EXPIRY_CHECK_SECONDS
        for exchange in [exchange for exchange in self._started if exchange.deadline <= now]:
            failed = exchange_error if exchange.state is EXCHANGING else connect_error
            self._fail(exchange, failed(exchange.request, TimeoutError()))
        if now >= self._next_queue_scan:  # requests still waiting for a connection
            self._next_queue_scan = now + WAKER_MAX_WAIT_SECONDS
            for waiting in [waiting for turns in self._turns.values() for waiting in turns.waiting.values()]:
                for exchange in [exchange for exchange in waiting if exchange.deadline <= now]:
                    waiting.remove(exchange)
                    self._not_sent(exchange)

    @staticmethod
    def _not_sent(exchange: Exchange) -> None:
        exchange.future.set_exception(not_sent_error(exchange.request, exchange.bridge.pool_timeout))

    @staticmethod
    def _take_turn(exchange: Exchange) -> bool:
        """A waiting exchange's turn came: False if its pool timeout passed (it failed unsent),
        else True, its deadline now the whole timeout of its exchange."""
        now = time.monotonic()
        if exchange.deadline <= now:
            _LoopDriver._not_sent(exchange)
            return False
        exchange.deadline = now + exchange.request.timeout
        return True

    def _release(self, exchange: Exchange, keep_alive: bool) -> None:
        """Free the exchange's turn (whatever happens) and its connection: straight to the
        next waiting request to the same host, back to the pool, or closed."""
        bridge, sock, key = exchange.bridge, exchange.sock, exchange.key
        exchange.sock = None
        self._started.discard(exchange)
        turns = self._turns[bridge]
        handed_over = False
        try:
            if sock is None:
                return
            while keep_alive and (following := turns.next_waiter(key)) is not None:
                if not self._take_turn(following):
                    continue
                self._started.add(following)
                handed_over = True  # the turn goes with the connection
                self._send_on(following, sock, reused=True)  # re-registered for ``following``
                return
            if keep_alive:
                self._poller.unregister(sock)
                bridge.pool.checkin(key, sock)
            else:
                self._unregister_and_close(sock)
        finally:
            if not handed_over:
                turns.free(key)
                self._start_waiting(turns, key)

    def _start_waiting(self, turns: Turns[Exchange], key: HostKey) -> None:
        """Start waiting requests while turns are free; a start that fails at once frees its turn
        to this loop (not a nested call, which could exhaust the stack)."""
        if self._starting_waiting:
            return
        self._starting_waiting = True
        try:
            while (following := turns.admit(key)) is not None:
                if self._take_turn(following):
                    self._start(following)
                else:
                    turns.free(key)
        finally:
            self._starting_waiting = False
