"""--ready-file: the addresses a server bound, as a JSON file a test fixture reads.

With `--port 0 --http-port -1` a fixture learnt its ports only by matching the log's
ready lines (words meant for a person) with a pattern of its own; this file says
them once serving, in a form that a fixture of any language reads in one call.
It is written whole (a reader never sees half of it), removed before the start if
the server it names no longer runs, its pid being gone or another process's (a file
left by a server killed outright is never taken for this one's) and by its own
server at a clean stop. No grpc here: the --processes parent uses it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ANY_ADDRESS = ("", "0.0.0.0", "::")


def dialled(host: str, port: int) -> str:
    """`host:port` as a client on this machine dials it: a server bound on every
    address is reached at loopback; an IPv6 address is bracketed."""
    if host in ANY_ADDRESS:
        host = "::1" if host == "::" else "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def clear(path: str) -> None:
    """Remove a ready file that a server no longer running left at `path` (killed
    outright), making its folder if missing (so a folder that cannot hold it stops
    the start, not the ready moment). A running server's is kept: a second start told
    the same path, that then fails on its port, took the first one's file away.
    OSError if the folder cannot be made or the file not removed."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    named = _pid_in(path)
    if named is not None and named != os.getpid() and _runs(named) \
            and not _began_after(named, path):
        return
    Path(path).unlink(missing_ok=True)


def remove_own(path: str) -> None:
    """Remove the ready file at `path` if this process wrote it (at a stop)."""
    if path and _pid_in(path) == os.getpid():
        Path(path).unlink(missing_ok=True)


def _pid_in(path: str) -> int | None:
    """The pid a ready file names; None if there is none, or it cannot be read."""
    try:
        with open(path, encoding="utf-8") as said:
            pid = json.load(said).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and pid > 0 else None


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's: it runs)
        return True
    return True


def _began_after(pid: int, path: str) -> bool:
    """Whether process `pid` began after the file at `path` was written, so did not
    write it: its pid, a killed server's, used again since (a busy machine cycles its
    pids). Linux's /proc tells, to a second (the boot time's); False where it cannot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # (after the command's name, which may hold spaces and parentheses: the
            # state is field 3, the start time in clock ticks since boot field 22)
            ticks = int(stat.read().rpartition(b")")[2].split()[19])
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime "))
        written = os.stat(path).st_mtime
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > written + 1.0


def write(path: str, host: str, port: int, http_port: int) -> None:
    """Write the ready file: `grpc` and `http` (null when HTTP is off) as
    `host:port`, their ports alone, and the pid of the process to signal."""
    if not path:
        return
    said = {"grpc": dialled(host, port), "grpcPort": port,
            "http": dialled(host, http_port) if http_port else None,
            "httpPort": http_port or None, "pid": os.getpid()}
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(said, out)
            out.write("\n")
        os.replace(partial, path)  # whole or not there: a poller never reads half of it
    except OSError:
        Path(partial).unlink(missing_ok=True)
        raise
