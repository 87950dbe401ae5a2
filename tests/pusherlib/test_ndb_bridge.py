"""The google-cloud-ndb bridge (pusherlib.transports.ndb): requests sent and read in the
event loop's thread over non-blocking connections, answers and errors through NDB futures."""

from __future__ import annotations

import ast
import errno
import importlib
import inspect
import json
import select
import socket
import ssl
import threading
import uuid
from concurrent.futures import Future as ThreadFuture

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import ndb

from pusherlib import (
    Pusher,
    PusherBadAuth,
    PusherConnectionError,
    PusherNotSent,
    PusherServerError,
    PusherTimeout,
)
from pusherlib.transports import ndb_loop, nonblocking, pollers
from pusherlib.transports.base import Request, Response
from pusherlib.transports.http import HTTPTransport
from pusherlib.transports.ndb import NdbBridge, ThreadedNdbBridge, ThreadedNdbFutures
from tests.support.fault_server import Close, FaultServer, Reply, Reset
from tests.support.processes import free_port
from tests.support.proxy import ForwardProxy
from tests.support.raw_replies import MALFORMED_ANSWERS, READABLE_ANSWERS, RawReplyServer
from tests.support.tls import (  # soketi serving TLS with a CA made there
    tls_client,
    tls_soketi,  # noqa: F401 - a fixture
    tls_subscriber,  # noqa: F401 - a fixture
)

OK = Reply.json(200, {"ok": True})


@pytest.fixture(scope="module")
def ndb_client():
    return ndb.Client(project="test", credentials=AnonymousCredentials())


@pytest.fixture
def ndb_context(ndb_client):
    with ndb_client.context() as context:
        yield context


def client_for(server: FaultServer, **options) -> Pusher:
    return Pusher("1", "key", "secret", host=server.host, port=server.port, ssl=False, **options)


def test_default_transport_uses_the_in_loop_bridge(pusher, ndb_context):
    assert pusher.trigger_async("bridge-check", "e", "x").result() == {"ok": True}
    assert isinstance(pusher.transport._ndb_bridge, NdbBridge)


def test_fan_out_reaches_the_subscriber_in_full(pusher, subscriber, ndb_context):
    channel = f"fan-out-{uuid.uuid4().hex[:10]}"
    subscriber.subscribe(channel)
    futures = [pusher.trigger_async(channel, "n", {"n": n}) for n in range(300)]
    assert all(isinstance(future, ndb.Future) for future in futures)
    assert [future.result() for future in futures] == [{"ok": True}] * 300
    arrived = {json.loads(subscriber.event("n", channel)["data"])["n"] for _ in range(300)}
    assert arrived == set(range(300))


def test_requests_sent_without_waiting_complete_when_the_context_ends(pusher, subscriber, ndb_client):
    channel = f"unwaited-{uuid.uuid4().hex[:10]}"
    subscriber.subscribe(channel)
    with ndb_client.context():
        futures = [pusher.trigger_async(channel, "n", {"n": n}) for n in range(5)]
    assert all(future.done() for future in futures)
    assert {json.loads(subscriber.event("n", channel)["data"])["n"] for _ in range(5)} == set(range(5))


def test_tasklets_yield_futures_alongside_ndb_timers(pusher, ndb_context):
    @ndb.tasklet
    def trigger_after(pause: float, n: int):
        yield ndb.tasklets.sleep(pause)
        answer = yield pusher.trigger_async("tasklets", "e", {"n": n})
        return n, answer

    @ndb.tasklet
    def everything():
        results = yield [trigger_after(0.02 * (n % 3), n) for n in range(12)]
        return results

    assert list(everything().result()) == [(n, {"ok": True}) for n in range(12)]


def test_pusher_errors_arrive_through_the_future(soketi, ndb_context):
    wrong = Pusher.from_url(soketi.url.replace(soketi.secret, "not-the-secret"))
    future = wrong.trigger_async("c", "e", "x")
    with pytest.raises(PusherBadAuth):
        future.result()
    assert isinstance(future.exception(), PusherBadAuth)


def test_server_error_status_through_the_future(ndb_context):
    with FaultServer([Reply(503, b"busy")]) as server:
        client = client_for(server)
        with pytest.raises(PusherServerError) as raised:
            client.trigger_async("c", "e", "x").result()
        assert raised.value.status == 503 and raised.value.retryable
        client.close()


def test_connection_refused_through_the_future(ndb_context):
    client = Pusher("1", "key", "secret", host="127.0.0.1", port=free_port(), ssl=False)
    futures = [client.trigger_async("c", "e", str(n)) for n in range(3)]
    for future in futures:
        with pytest.raises(PusherConnectionError):
            future.result()


@pytest.mark.parametrize("step", [Reset(), Close()], ids=["reset", "close"])
def test_fresh_connection_dropped_without_answer(step, ndb_context):
    with FaultServer([step]) as server:
        client = client_for(server)
        with pytest.raises(PusherConnectionError):
            client.trigger_async("c", "e", "x").result()
        assert client.trigger_async("c", "e", "y").result() == {}
        client.close()


def test_timeout_fails_only_the_slow_request(ndb_context):
    with FaultServer([Reply(200, b"{}", delay=30)], default=OK) as server:
        client = client_for(server, timeout=3)
        slow = client.trigger_async("c", "e", "slow")
        while not server.request_count:  # the slow answer is the first request's, whichever arrives first
            ndb.tasklets.sleep(0.01).result()  # runs the event loop, which sends the request
        fast = [client.trigger_async("c", "e", str(n)) for n in range(5)]
        assert [future.result() for future in fast] == [{"ok": True}] * 5
        with pytest.raises(PusherTimeout):
            slow.result()
        client.close()


def test_pooled_connection_closed_by_the_server_is_replaced(ndb_context):
    with FaultServer([Reply.json(200, {"n": 1}, close_after=True)], default=OK) as server:
        client = client_for(server)
        assert client.trigger_async("c", "e", "1").result() == {"n": 1}
        assert client.trigger_async("c", "e", "2").result() == {"ok": True}
        assert server.connections == 2
        assert [request.body for request in server.requests].count(server.requests[-1].body) == 1
        client.close()


def test_keep_alive_connections_are_reused_up_to_the_limit(ndb_context):
    with FaultServer(default=Reply.json(200, {"ok": True}, delay=0.3)) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=3))
        for _wave in range(3):
            futures = [client.trigger_async("c", "e", str(n)) for n in range(10)]
            assert [future.result() for future in futures] == [{"ok": True}] * 10
        assert server.max_in_flight == 3
        assert server.connections == 3
        client.close()


def test_transport_keeping_no_idle_connection_still_sends(ndb_context):
    with FaultServer(default=OK) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=0))
        futures = [client.trigger_async("c", "e", str(n)) for n in range(4)]
        assert [future.result() for future in futures] == [{"ok": True}] * 4
        client.close()


def test_chunked_answer_split_in_small_pieces(ndb_context):
    body = json.dumps({"channels": {f"channel-{n}": {} for n in range(20)}}).encode()
    with FaultServer([Reply(200, body, chunked=True, chunk_size=5)], default=OK) as server:
        client = client_for(server)
        assert client.channels_info_async().result() == json.loads(body)
        assert client.trigger_async("c", "e", "after").result() == {"ok": True}
        assert server.connections == 1
        client.close()


@pytest.mark.parametrize(("answer", "carried"), READABLE_ANSWERS.values(), ids=READABLE_ANSWERS)
def test_answers_read_as_they_come(answer, carried, ndb_context):
    with RawReplyServer([answer], default=OK) as server:
        client = client_for(server)
        assert client.trigger_async("c", "e", "x").result() == carried
        assert client.trigger_async("c", "e", "x").result() == {"ok": True}
        assert server.connections == (1 if answer.keep_open else 2)
        client.close()


@pytest.mark.parametrize(("answer", "message"), MALFORMED_ANSWERS.values(), ids=MALFORMED_ANSWERS)
def test_malformed_answers_fail_through_the_future(answer, message, ndb_context):
    with RawReplyServer([answer]) as server:
        client = client_for(server)
        with pytest.raises(PusherConnectionError, match=message):
            client.trigger_async("c", "e", "x").result()
        assert client.trigger_async("c", "e", "x").result() == {}  # on a new connection
        assert server.connections == 2
        client.close()


def test_a_slow_client_does_not_hold_up_another_in_the_same_loop(ndb_context):
    slow_reply = Reply(200, b"{}", delay=8)
    with FaultServer(default=slow_reply) as slow_server, FaultServer(default=OK) as fast_server:
        slow_client, fast_client = client_for(slow_server, timeout=30), client_for(fast_server)
        slow = slow_client.trigger_async("c", "e", "slow")
        fast = [fast_client.trigger_async("c", "e", str(n)) for n in range(20)]
        assert [future.result() for future in fast] == [{"ok": True}] * 20
        assert not slow.done()
        assert slow.result() == {}
        slow_client.close()
        fast_client.close()


def test_one_client_shared_by_threads_each_in_its_own_context(pusher, ndb_client):
    answers: list[object] = []

    def work() -> None:
        with ndb_client.context():
            futures = [pusher.trigger_async("threads", "e", str(n)) for n in range(50)]
            answers.extend(future.result() for future in futures)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [{"ok": True}] * 200


def test_next_address_is_tried_when_one_refuses(ndb_context, monkeypatch):
    with FaultServer(default=OK) as server:
        client = client_for(server)
        resolve = socket.getaddrinfo
        refusing = ("127.0.0.1", free_port())

        def two_addresses(host, port, *args, **kwargs):
            found = resolve(host, port, *args, **kwargs)
            return [(*found[0][:4], refusing), *found]

        monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
        assert client.trigger_async("c", "e", "x").result() == {"ok": True}
        client.close()


def test_tls_fan_out_with_a_trusted_certificate(tls_soketi, tls_subscriber, ndb_context):  # noqa: F811
    server, ca_path = tls_soketi
    trusted = HTTPTransport(ssl_context=ssl.create_default_context(cafile=str(ca_path)))
    with tls_client(server, trusted) as client:
        tls_subscriber.subscribe("secure-fan-out")
        futures = [client.trigger_async("secure-fan-out", "n", {"n": n}) for n in range(30)]
        assert [future.result() for future in futures] == [{"ok": True}] * 30
        arrived = {json.loads(tls_subscriber.event("n", "secure-fan-out")["data"])["n"] for _ in range(30)}
        assert arrived == set(range(30))
        assert isinstance(client.transport._ndb_bridge, NdbBridge)


def test_tls_certificate_not_trusted_through_the_future(tls_soketi, ndb_context):  # noqa: F811
    server, _ = tls_soketi
    with tls_client(server, HTTPTransport()) as client:
        future = client.trigger_async("secure", "e", "x")
        with pytest.raises(PusherConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            future.result()


def test_tls_handshake_that_never_ends_times_out(ndb_context):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connections queue, nobody answers
        port = silent.getsockname()[1]
        client = Pusher("1", "key", "secret", host="127.0.0.1", port=port, ssl=True, timeout=0.3)
        with pytest.raises(PusherTimeout, match="connecting to"):
            client.trigger_async("c", "e", "x").result()
        client.close()


def test_proxy_transport_runs_on_threads(soketi, subscriber, ndb_context):
    with ForwardProxy() as proxy:
        transport = HTTPTransport(proxy=f"http://127.0.0.1:{proxy.port}")
        with Pusher.from_url(soketi.url, transport=transport) as client:
            subscriber.subscribe("proxied-async")
            assert client.trigger_async("proxied-async", "e", "via proxy").result() == {"ok": True}
            assert subscriber.event("e", "proxied-async")["data"] == "via proxy"
            assert isinstance(transport._ndb_bridge, ThreadedNdbBridge)
    assert [seen[0] for seen in proxy.seen] == ["POST"]


class RecordingTransport(ThreadedNdbFutures):
    """A transport with only ``send``: it gets NDB futures through the thread pool."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    def send(self, request: Request) -> Response:
        self.sent.append(request)
        return Response(200, b'{"recorded": true}')


def test_transport_with_only_send_gets_ndb_futures_on_threads(ndb_context):
    transport = RecordingTransport()
    client = Pusher("1", "key", "secret", host="example.invalid", transport=transport)
    assert client.trigger_async("c", "e", "x").result() == {"recorded": True}
    assert isinstance(transport._ndb_bridge, ThreadedNdbBridge)
    assert transport.sent[0].target.startswith("/apps/1/events?")
    client.close()


# -- the bridge on the event loop's public calls ----------------------------------------------------


def test_an_answer_is_not_lost_while_other_rpcs_complete(ndb_context):
    """A thread-pool future completing while a direct request waits must not make the event
    loop give up on the direct one ("Eventloop is exhausted with unfinished futures")."""
    with FaultServer(default=Reply.json(200, {"slow": True}, delay=1)) as server:
        direct = client_for(server)
        threaded = Pusher("1", "key", "secret", host="example.invalid", transport=RecordingTransport())
        waiting = direct.trigger_async("c", "e", "direct")
        others = [threaded.trigger_async("c", "e", str(n)) for n in range(3)]
        assert waiting.result() == {"slow": True}
        assert [future.result() for future in others] == [{"recorded": True}] * 3
        direct.close()


def test_time_waiting_for_a_connection_counts_against_the_deadline(ndb_context):
    with FaultServer([Reply(200, b"{}", delay=8)], default=OK) as server:
        transport = HTTPTransport(max_idle_per_host=1)
        patient = client_for(server, transport=transport, timeout=30)
        hurried = client_for(server, transport=transport, timeout=0.5)
        first = patient.trigger_async("c", "e", "first")
        queued = hurried.trigger_async("c", "e", "queued behind it")
        with pytest.raises(PusherNotSent, match="not sent: no connection"):
            queued.result()
        assert not first.done()
        assert server.request_count == 1
        assert first.result() == {}
        patient.close()


def test_a_failed_socket_call_arrives_through_the_future_and_frees_its_slot(ndb_context, monkeypatch):
    with FaultServer(default=OK) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=1))
        real_socket = socket.socket
        failures = iter([OSError(24, "Too many open files")])

        def socket_or_failure(*args, **kwargs):
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return real_socket(*args, **kwargs)

        monkeypatch.setattr("pusherlib.transports.nonblocking.socket.socket", socket_or_failure)
        failed = client.trigger_async("c", "e", "x")
        with pytest.raises(PusherConnectionError, match="Too many open files") as caught:
            failed.result()
        assert caught.value.retryable
        monkeypatch.undo()
        assert client.trigger_async("c", "e", "y").result() == {"ok": True}
        client.close()


def bridge_sockets(monkeypatch, kind: type[socket.socket]) -> list[socket.socket]:
    """Have the bridge open its connections as ``kind``; the list of those it opened.
    Sockets made around an existing one (the test server's accepted ones, the wake pipe's
    pair) stay plain."""
    real_socket = socket.socket
    opened: list[socket.socket] = []

    def make(*args, **kwargs):
        if "fileno" in kwargs or len(args) > 3:
            return real_socket(*args, **kwargs)
        sock = kind(*args, **kwargs)
        opened.append(sock)
        return sock

    monkeypatch.setattr("pusherlib.transports.nonblocking.socket.socket", make)
    return opened


class StillConnecting(socket.socket):
    """A connection not up yet when the request is first written (as off loopback)."""

    def send(self, data, *args):
        if not getattr(self, "tried", False):
            self.tried = True
            raise BlockingIOError(errno.EAGAIN, "connecting")
        return super().send(data, *args)


class TakesLittle(socket.socket):
    """A connection whose kernel takes a few bytes of the request at a time."""

    def send(self, data, *args):
        return super().send(bytes(data[:7]), *args)


@pytest.fixture(params=["epoll", "selectors"])
def poller(request, monkeypatch):
    """Each way the bridge can wait for its sockets: epoll where there is one (Linux), the
    selectors module's default elsewhere."""
    if request.param == "selectors":
        monkeypatch.setattr(nonblocking, "new_poller", pollers.Poller)
    elif not hasattr(select, "epoll"):
        pytest.skip("no epoll here")
    return request.param


@pytest.mark.parametrize("kind", [StillConnecting, TakesLittle], ids=["still-connecting", "few-bytes"])
def test_a_request_is_written_whole_however_the_connection_takes_it(kind, poller, ndb_context, monkeypatch):
    with FaultServer(default=OK) as server:
        client = client_for(server)
        opened = bridge_sockets(monkeypatch, kind)
        futures = [client.trigger_async("c", "e", str(n)) for n in range(5)]
        assert [future.result() for future in futures] == [{"ok": True}] * 5
        assert len(opened) == 5
        assert sorted(json.loads(request.body)["data"] for request in server.requests) == list("01234")
        client.close()


def test_fan_out_on_kept_alive_connections_with_either_poller(poller, ndb_context):
    with FaultServer(default=OK) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=4))
        futures = [client.trigger_async("c", "e", str(n)) for n in range(60)]
        assert [future.result() for future in futures] == [{"ok": True}] * 60
        assert server.connections == 4 and server.request_count == 60
        client.close()


class Refusing(socket.socket):
    """A connect that fails: the first write reports it (ECONNREFUSED), as the kernel does."""

    def send(self, data, *args):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def test_a_connect_failure_found_by_the_first_write_fails_through_the_future(ndb_context, monkeypatch):
    with FaultServer(default=OK) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=1))
        opened = bridge_sockets(monkeypatch, Refusing)
        futures = [client.trigger_async("c", "e", str(n)) for n in range(3)]
        for future in futures:
            with pytest.raises(PusherConnectionError, match=r"cannot connect to .*refused"):
                future.result()
        assert len(opened) == 3 and all(sock.fileno() == -1 for sock in opened)
        assert server.request_count == 0
        monkeypatch.undo()
        assert client.trigger_async("c", "e", "after").result() == {"ok": True}
        client.close()


def test_an_unencodable_host_name_fails_through_the_future(ndb_context):
    client = Pusher("1", "key", "secret", host="b\u00fccher" + "x" * 70 + ".example", ssl=False)
    future = client.trigger_async("c", "e", "x")
    with pytest.raises(PusherConnectionError, match="cannot be IDNA-encoded"):
        future.result()


def test_many_waiting_requests_failing_at_once_fail_one_by_one(ndb_context, monkeypatch):
    """Waiting requests whose start fails at once (here socket() refusing every call once the
    first two are sent) pass the freed slot on: thousands, without piling up the stack."""

    def no_socket(*args, **kwargs):
        raise OSError(24, "Too many open files")

    closing = Reply(200, b"{}", headers=(("Connection", "close"),), delay=0.5)
    with FaultServer([closing] * 2, default=OK) as server:
        client = client_for(server, transport=HTTPTransport(max_idle_per_host=2), timeout=30)
        futures = [client.trigger_async("c", "e", str(n)) for n in range(3000)]
        monkeypatch.setattr("pusherlib.transports.nonblocking.socket.socket", no_socket)
        assert [future.result() for future in futures[:2]] == [{}, {}]
        errors = {type(future.exception()) for future in futures[2:]}
        monkeypatch.undo()
        assert errors == {PusherConnectionError}
        assert client.trigger_async("c", "e", "after").result() == {"ok": True}
        client.close()


def imported_modules(module: object) -> set[str]:
    """Every module ``module``'s source imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_generic_base_does_not_import_the_ndb_bridge():
    from pusherlib.transports import base, http, ndb

    assert not {".ndb", "google.cloud.ndb"} & imported_modules(base)
    assert ".http" not in imported_modules(ndb)  # http imports ndb (lazily), never the other way
    assert ".ndb" in imported_modules(http)
    assert not [module for module in (ndb_loop, nonblocking) if ".http" in imported_modules(module)]


def test_the_bridges_import_no_private_ndb_module():
    for module in (ndb_loop, nonblocking, pollers, importlib.import_module("pusherlib.transports.ndb")):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("google.cloud.ndb"):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                assert not [name for name in names if "._" in name], names


def test_the_event_loop_hook_the_bridges_rely_on(ndb_context):
    """The one hook used: the public context's event loop runs ``callback(rpc)`` in its own
    thread once a concurrent future ``rpc`` completes (how it waits for gRPC calls)."""
    loop = ndb_loop.event_loop()
    assert list(inspect.signature(loop.queue_rpc).parameters) == ["rpc", "callback"]
    work: ThreadFuture[str] = ThreadFuture()
    seen: list[tuple[str, str]] = []
    loop.queue_rpc(work, lambda done: seen.append((done.result(), threading.current_thread().name)))
    threading.Timer(0.05, work.set_result, ("done",)).start()
    loop.run()
    assert seen == [("done", threading.current_thread().name)]
