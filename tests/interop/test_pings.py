"""HTTP/2 PINGs on the gRPC port: anyone may send them, no call and no key needed,
so what each costs the server is bounded by what it costs to answer one."""

from __future__ import annotations

import select
import socket
import threading
from pathlib import Path

from .http2 import ACK, GOAWAY, PING, PREFACE, SETTINGS, Frames, frame
from .support import RPC_DEADLINE, running_server, sqlite_url

PINGS = 50_000  # 850 KB


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_a_flood_of_pings_is_answered_at_the_cost_of_its_acks(tmp_path: Path) -> None:
    """grpc's ping policing (GOAWAY too_many_pings past two pings within 5 minutes of
    a connection without calls) made each ping it read after its GOAWAY cost about
    150-400 us of CPU: 200,000 pings (3.4 MB, sent in moments, the client reading its
    answers) took 30 s of the server's CPU, a core for 30 s (1,000,000: 93 s), and
    other clients' writes slowed meanwhile. Acked as any frame (about 0.2 us each),
    the 1,000,000 took 0.17 s; a client that reads none of the acks is still held
    back by grpc's bound on the frames it owes (it stops reading the connection)."""
    with running_server(tmp_path, sqlite_url(tmp_path / "events.db")) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=RPC_DEADLINE)
        frames = Frames(sock)
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        frames.read(0.5)
        acks, goaways = 0, []

        def read() -> None:
            nonlocal acks
            while not frames.closed and select.select([sock], [], [], 5.0)[0]:
                for kind, flags, _, payload in frames.read(0.5):
                    acks += kind == PING and bool(flags & ACK)
                    if kind == GOAWAY:
                        goaways.append(payload[8:])

        reader = threading.Thread(target=read)
        reader.start()
        before = cpu_ticks(server.proc.pid)
        sock.sendall(frame(PING, 0, 0, b"12345678") * PINGS)
        reader.join(60)
        spent = cpu_ticks(server.proc.pid) - before
        sock.close()
        assert (acks, goaways) == (PINGS, [])
        assert spent < 100  # ticks: about 0 now; 7-20 s (700-2,000) before
