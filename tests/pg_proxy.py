"""A TCP forwarder to PostgreSQL for tests of a database that goes away: the store
(tests/unit) or a whole server (tests/interop) reaches the database through it, so
the database itself never stops (other tests use it). Imports nothing of ours."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg.conninfo import conninfo_to_dict


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to `host`:`port`. It can be cut (every connection
    dropped, new ones refused) and restored, or set to cut itself as a client sends
    `cut_at` (the bytes of a statement, not passed on; `cut_done` is set then); or
    held (`hold`, or as a client sends `hold_at`): connections stay open and new ones
    are accepted, but nothing is passed on either way until `release`, as of a
    database whose processes are stopped (what was sent meanwhile then arrives)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = True
        self.cut_at: bytes | None = None
        self.hold_at: bytes | None = None
        self.cut_done = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True, name="pg-proxy").start()

    def url(self, database: str) -> str:
        """`database`'s URL (its user and database name) through this proxy."""
        params = conninfo_to_dict(database)
        user = f"{params['user']}@" if params.get("user") else ""
        return f"postgresql://{user}127.0.0.1:{self.port}/{params['dbname']}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                if not self._up:
                    raise OSError("cut")
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                # (a cut while the upstream connection was made: it closed the sockets
                # it knew, not these; kept, they would pass the outage through)
                if not self._up:
                    client.close()
                    upstream.close()
                    continue
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink, source is client),
                                 daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and self.cut_at is not None and self.cut_at in data:
                    self.cut_at = None
                    self.cut()
                    return
                if from_client and self.hold_at is not None and self.hold_at in data:
                    self.hold_at = None
                    self.hold()
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for each in (source, sink):
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self._lock:
            self._up = False
            for each in self._sockets:
                try:
                    each.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                each.close()
            self._sockets.clear()
        self.cut_done.set()

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self.release()
        self.cut()
        self._listener.close()


@contextmanager
def proxy_to(database: str) -> Iterator[CuttingProxy]:
    """A CuttingProxy to `database`'s server, closed on leaving."""
    params = conninfo_to_dict(database)
    running = CuttingProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    try:
        yield running
    finally:
        running.close()
