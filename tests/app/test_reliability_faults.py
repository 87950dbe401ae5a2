"""The fault matrix: every event the front end accepts ends delivered or parked, counted.

Each test drives the real path: ``POST /push/<channel>/<event>`` → the Cloud Tasks
emulator → the worker under gunicorn → (the fault proxy →) soketi → a websocket
subscriber counting events by the id in their data; parked events are read back from
``GET /admin/parked``. Each writes its figures to ``test-output/reliability/<name>.json``.

The emulator retries a failed task at once, with no backoff, so ``PUSHER_MAX_ATTEMPTS`` is
set above what each outage costs, and the queue is paused while soketi comes back and the
subscriber reconnects (an event published before anyone listens reaches nobody: that is
Pusher, not the app).
"""

from __future__ import annotations

import json

import pytest

from tests.support.appserver import ADMIN_HEADERS
from tests.support.fault_proxy import Fault
from tests.support.processes import wait_until
from tests.support.reliability import EventStream, Figures, Stack, parked_ids, reliability_stack, settle

pytestmark = pytest.mark.emulator

# Timeouts with margins a loaded 2-core CI machine cannot eat: an answer of soketi that
# comes late by accident would be an extra retry (a duplicate the counts below do not allow).
OUTAGE_ENV = {"PUSHER_MAX_ATTEMPTS": "100000", "PUSHER_TIMEOUT": "2"}
PROXY_ENV = {"PUSHER_MAX_ATTEMPTS": "1000", "PUSHER_TIMEOUT": "2"}
BUDGET_ENV = {"PUSHER_MAX_ATTEMPTS": "3", "PUSHER_TIMEOUT": "2"}
SLOWER_THAN_THE_TIMEOUT = 6.0  # seconds: three times PROXY_ENV's PUSHER_TIMEOUT


def record(test: str, fault: str, stream: EventStream, stack: Stack, parked: list[str], **extra) -> Figures:
    figures = Figures.count(test, fault, stream, stack, parked, proxy=dict(stack.proxy.counters), **extra)
    figures.write(test.removeprefix("test_"))
    return figures


def bring_soketi_back(stack: Stack) -> None:
    """Pause the queue, start soketi, let the subscriber subscribe again, resume."""
    subscriptions = stack.subscriber.subscriptions
    stack.emulator.pause("pusher")
    stack.proxy.wait_quiet(0.5)  # the emulator's last pass over the queue has ended
    stack.soketi.start()
    if stack.subscriber.subscriptions == 0:
        stack.subscriber.start()
    wait_until(lambda: stack.subscriber.subscriptions > subscriptions, 15, "subscriber back")
    stack.emulator.resume("pusher")


def test_soketi_down_at_start():
    with reliability_stack("down-at-start", OUTAGE_ENV, soketi_running=False) as stack:
        stream = EventStream(stack.app, "down")
        stream.post(30)
        wait_until(lambda: stack.proxy.counters["unreachable"] >= 30, 20, "every event tried")
        bring_soketi_back(stack)
        parked = settle(stack, stream.accepted)
        figures = record("test_soketi_down_at_start", "soketi down at start", stream, stack, parked)
    assert figures.accepted == 30
    assert figures.lost == 0 and figures.dropped_by_soketi == 0
    assert figures.delivered == 30 and figures.parked == 0


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_soketi_stopped_mid_stream_and_started_again(how):
    """soketi goes away while events stream in (SIGTERM: a graceful stop; SIGKILL: a crash)."""
    with reliability_stack(f"soketi-{how}", OUTAGE_ENV) as stack:
        stream = EventStream(stack.app, how)
        poster = stream.post_paced(90, interval=0.02)
        wait_until(lambda: len(stream.accepted) >= 30, 20, "30 events accepted")
        if how == "kill":
            stack.soketi.process.kill()
        stack.soketi.stop()
        unreachable = stack.proxy.counters["unreachable"]
        wait_until(lambda: stack.proxy.counters["unreachable"] >= unreachable + 10, 20, "retries")
        bring_soketi_back(stack)
        poster.join(timeout=60)
        parked = settle(stack, stream.accepted)
        fault = f"soketi {'killed' if how == 'kill' else 'stopped'} mid-stream, started again"
        figures = record(f"test_soketi_{how}_mid_stream", fault, stream, stack, parked)
    assert figures.accepted == 90
    assert figures.lost == 0 and figures.parked == 0
    # A graceful soketi closes its websockets a moment before its HTTP API: an event it
    # acknowledges in that moment reaches nobody. A crash loses nothing it acknowledged.
    assert figures.dropped_by_soketi <= (2 if how == "stop" else 0)
    assert figures.delivered + figures.dropped_by_soketi == 90


@pytest.fixture(scope="module")
def proxy_stack():
    with reliability_stack("faults", PROXY_ENV) as stack:
        yield stack


def run_with_faults(stack: Stack, prefix: str, events: int, *faults: tuple[Fault, int]) -> EventStream:
    """Arm ``faults`` (each for a number of requests), post ``events``, wait for the end."""
    stack.proxy.reset_counters()
    for fault, count in faults:
        stack.proxy.arm(fault, count)
    stream = EventStream(stack.app, prefix)
    stream.post(events)
    wait_until(lambda: not stack.proxy.armed(), 30, "every armed fault used")
    return stream


def test_answers_slower_than_the_timeout(proxy_stack):
    """soketi's answer comes after the worker's timeout: the worker retries an event soketi
    already published, so it arrives twice (Pusher delivery is at least once)."""
    stream = run_with_faults(proxy_stack, "slow", 20, (Fault.slow(SLOWER_THAN_THE_TIMEOUT), 6))
    parked = settle(proxy_stack, stream.accepted)
    figures = record(
        "test_answers_slower_than_the_timeout",
        "answers slower than the timeout",
        stream,
        proxy_stack,
        parked,
        injected=6,
    )
    assert figures.lost == 0 and figures.parked == 0 and figures.delivered == 20
    assert 1 <= figures.duplicates <= 6


@pytest.mark.parametrize("after_forwarding", [False, True], ids=["before-soketi", "after-soketi"])
def test_connection_resets(proxy_stack, after_forwarding):
    """The connection is reset before soketi sees the request, or after it answered."""
    stream = run_with_faults(
        proxy_stack, f"reset{int(after_forwarding)}", 20, (Fault.reset(after_forwarding=after_forwarding), 8)
    )
    parked = settle(proxy_stack, stream.accepted)
    where = "after soketi answered" if after_forwarding else "before soketi saw the request"
    name = f"test_connection_resets_{'after' if after_forwarding else 'before'}_soketi"
    figures = record(name, f"connections reset {where}", stream, proxy_stack, parked, injected=8)
    assert figures.lost == 0 and figures.parked == 0 and figures.delivered == 20
    if after_forwarding:
        assert figures.duplicates <= 8
    else:
        assert figures.duplicates == 0


@pytest.mark.parametrize("status", [429, 500, 502, 503, 401, 403])
def test_bursts_of_429_and_5xx(proxy_stack, status):
    """A burst of 15 such answers (Pusher never saw those requests): retried, not lost.
    401 and 403 (credentials, quota) are retried too, while an operator fixes them."""
    stream = run_with_faults(proxy_stack, f"burst{status}", 20, (Fault.answer(status), 15))
    parked = settle(proxy_stack, stream.accepted)
    figures = record(
        f"test_burst_of_{status}", f"burst of 15 answers {status}", stream, proxy_stack, parked, injected=15
    )
    assert figures.lost == 0 and figures.parked == 0
    assert figures.delivered == 20 and figures.duplicates == 0


@pytest.fixture(scope="module")
def budget_stack():
    with reliability_stack("budget", BUDGET_ENV) as stack:
        yield stack


def replay_parked(stack: Stack, ids: list[str]) -> list[str]:
    """Replay every parked task; return the ids still missing at the subscriber after."""
    response = stack.app.client.post("/admin/parked/replay", params={"limit": 1000}, headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return sorted(stack.subscriber.wait_for_ids(ids, timeout=20))


def test_outage_longer_than_the_retry_budget_parks_then_replay_delivers(budget_stack):
    """Every request answered 503 until each task used its 3 attempts: all 10 parked
    (listed with their data); the operator replays them once Pusher is back: delivered."""
    stack = budget_stack
    stack.proxy.reset_counters()
    stack.emulator.pause("pusher")
    stream = EventStream(stack.app, "budget")
    stream.post(10)
    stack.proxy.arm(Fault.answer(503))
    stack.emulator.resume("pusher")
    parked = settle(stack, stream.accepted)
    stack.proxy.clear()
    figures = record(
        "test_outage_longer_than_the_retry_budget",
        "503 for longer than the retry budget",
        stream,
        stack,
        parked,
    )
    assert figures.parked == 10 and figures.lost == 0 and figures.delivered == 0
    assert replay_parked(stack, stream.accepted) == []
    assert stack.subscriber.duplicates(stream.accepted) == 0


@pytest.mark.parametrize("status", [400, 413])
def test_permanent_refusals_are_parked_at_once(budget_stack, status):
    """Pusher refuses an event for good (400, 413): parked on the first attempt."""
    stack = budget_stack
    stack.proxy.reset_counters()
    stack.proxy.arm(Fault.answer(status), 5)
    stream = EventStream(stack.app, f"refused{status}")
    stream.post(5)
    wait_until(lambda: not stack.proxy.armed(), 20, "the refusals used")
    parked = settle(stack, stream.accepted)
    figures = record(
        f"test_permanent_refusal_{status}",
        f"Pusher answers {status}",
        stream,
        stack,
        parked,
        attempts=stack.proxy.counters["requests"],
    )
    assert figures.parked == 5 and figures.lost == 0
    assert figures.extra["attempts"] == 5  # one attempt each: not retried
    assert replay_parked(stack, stream.accepted) == []


def waiting_ids(stack: Stack) -> set[str]:
    """The ids of the events whose tasks wait in the emulator's ``pusher`` queue."""
    return {
        str(json.loads(task.app_engine_http_request.body)["id"]) for task in stack.emulator.tasks("pusher")
    }


def test_emulator_restarted_mid_stream():
    """The queue service restarts while events stream in. While it is down the front end
    answers 503 (the client sends again): nothing is accepted that is not queued. Every
    event accepted after the restart is delivered; the emulator keeps tasks in memory only,
    so those waiting in it at the restart are gone (Cloud Tasks keeps them)."""
    with reliability_stack("emulator-restart", OUTAGE_ENV) as stack:
        stream = EventStream(stack.app, "restart")
        poster = stream.post_paced(60, interval=0.02)
        wait_until(lambda: len(stream.accepted) >= 20, 20, "20 events accepted")
        waiting = waiting_ids(stack)
        stack.emulator.stop()
        refused = sum(stream.refused.values())
        wait_until(lambda: sum(stream.refused.values()) > refused, 20, "a post refused")
        accepted_before = set(stream.accepted)  # the poster is past any post in flight
        stack.emulator.start()
        poster.join(timeout=90)
        accepted_after = [i for i in stream.accepted if i not in accepted_before]
        parked = settle(stack, accepted_after)
        figures = record(
            "test_emulator_restarted_mid_stream",
            "Cloud Tasks emulator restarted mid-stream",
            stream,
            stack,
            parked,
            accepted_before_restart=len(accepted_before),
            waiting_at_restart=len(waiting),
        )
        lost = set(stream.accepted) - stack.subscriber.seen()
    assert figures.accepted == 60 and figures.refused.get(503, 0) >= 1
    assert figures.parked == 0 and figures.dropped_by_soketi == 0
    assert lost <= accepted_before  # only what the emulator held when it stopped
    assert waiting - stack.subscriber.seen() <= lost
    assert figures.delivered == 60 - len(lost)


def test_emulator_restarted_with_tasks_waiting():
    """What the emulator loses and Cloud Tasks keeps: 10 tasks waiting in a paused queue."""
    with reliability_stack("emulator-waiting", OUTAGE_ENV) as stack:
        stream = EventStream(stack.app, "waiting")
        stack.emulator.pause("pusher")
        stream.post(10)
        assert len(waiting_ids(stack)) == 10
        stack.emulator.stop()
        stack.emulator.start()
        left_in_queue = len(stack.emulator.tasks("pusher"))
        missing = stack.subscriber.wait_for_ids(stream.accepted, timeout=2)
        figures = record(
            "test_emulator_restarted_with_tasks_waiting",
            "emulator restarted with 10 tasks waiting (emulator only)",
            stream,
            stack,
            parked_ids(stack.app),
            left_in_queue=left_in_queue,
        )
    assert figures.accepted == 10 and left_in_queue == 0
    assert len(missing) == 10 and figures.lost == 10
