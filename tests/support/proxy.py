"""A tiny forward HTTP proxy for the transports' proxy support."""

from __future__ import annotations

import http.client
import selectors
import socket
import threading
from urllib.parse import urlsplit


class ForwardProxy:
    """A tiny HTTP proxy: absolute-form requests for ``http://``, ``CONNECT`` tunnels for
    ``https://``. Records ``(method, target, Proxy-Authorization)`` of each request."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.seen: list[tuple[str, str, str | None]] = []
        self._stopping = threading.Event()

    def __enter__(self) -> ForwardProxy:
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as rfile:
            method, target, _ = rfile.readline().decode("latin-1").split(" ", 2)
            headers = {}
            while (line := rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.seen.append((method, target, headers.pop("proxy-authorization", None)))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                with socket.create_connection((host, int(port))) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self._pipe(client, upstream)
                return
            body = rfile.read(int(headers.get("content-length", 0)))
            url = urlsplit(target)
            upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            upstream.request(method, f"{url.path}?{url.query}", body, headers)
            answer = upstream.getresponse()
            content = answer.read()
            upstream.close()
            client.sendall(
                f"HTTP/1.1 {answer.status} {answer.reason}\r\nContent-Length: {len(content)}\r\n"
                f"Connection: close\r\n\r\n".encode("latin-1")
                + content
            )

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ)
            selector.register(b, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(0.2):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    (b if key.fileobj is a else a).sendall(data)
