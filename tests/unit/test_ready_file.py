"""server.ready_file: the address a client on this machine dials, and which file a
start may remove."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from server import ready_file


@pytest.mark.parametrize(("host", "dialled"), [
    ("127.0.0.1", "127.0.0.1:5"), ("localhost", "localhost:5"), ("0.0.0.0", "127.0.0.1:5"),
    ("", "127.0.0.1:5"), ("::", "[::1]:5"), ("::1", "[::1]:5"), ("10.1.2.3", "10.1.2.3:5"),
])
def test_a_bound_address_is_said_as_a_client_dials_it(host: str, dialled: str) -> None:
    assert ready_file.dialled(host, 5) == dialled


def test_a_start_removes_an_ended_servers_file_and_keeps_a_running_ones(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    gone = subprocess.Popen(["true"])
    gone.wait()
    for pid, kept in ((gone.pid, False), (os.getppid(), True), (None, False)):
        path.write_text(json.dumps({"grpc": "127.0.0.1:1", "pid": pid}))
        ready_file.clear(str(path))
        assert path.exists() == kept, pid
    path.write_text("{not json")  # (half a file written by hand)
    ready_file.clear(str(path))
    assert not path.exists()


def test_a_stop_removes_only_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "ready.json"
    ready_file.write(str(path), "127.0.0.1", 1, 0)
    assert json.loads(path.read_text()) == {"grpc": "127.0.0.1:1", "grpcPort": 1,
                                            "http": None, "httpPort": None,
                                            "pid": os.getpid()}
    path.write_text(json.dumps({"pid": os.getppid()}))
    ready_file.remove_own(str(path))
    assert path.exists()
    ready_file.write(str(path), "127.0.0.1", 1, 2)
    ready_file.remove_own(str(path))
    assert not path.exists() and os.listdir(tmp_path) == []


def test_a_start_removes_a_file_whose_pid_is_now_another_process(tmp_path: Path) -> None:
    # A killed server's pid, used again since by a process that began after the file
    # was written (a busy CI machine cycles its pids), kept the file: a fixture polling
    # it read the dead server's ports as this start's until it was ready.
    path = tmp_path / "ready.json"
    later = subprocess.Popen(["sleep", "30"])
    try:
        path.write_text(json.dumps({"grpc": "127.0.0.1:1", "pid": later.pid}))
        written = path.stat().st_mtime - 60  # (written a minute before that process began)
        os.utime(path, (written, written))
        ready_file.clear(str(path))
        assert not path.exists()
    finally:
        later.kill()
        later.wait()
