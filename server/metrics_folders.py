"""The folder of a `--processes` supervisor's metrics (prometheus_client's multiprocess
files), and the sweep of those whose supervisor no longer runs.

The supervisor removes its folder as it exits; killed (SIGKILL, the OOM killer) it
cannot, and each such start left one in the temp folder for good. So each folder holds
a stamp naming its supervisor: its pid, the time the kernel says that process started,
its PID namespace and the boot it runs in. A start removes a folder only when its stamp
proves the supervisor gone: same boot, same PID namespace, and the pid runs no process
or one that started at another time (the pid was used again). Left alone: a folder with
no stamp that can be read (one being made, one of an older version), another user's,
one of another PID namespace (a container's pids are not this one's) or another boot
(another machine sharing the folder, as likely as a reboot that kept it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import NamedTuple

PREFIX = "footfall-metrics-"
STAMP = "supervisor"  # (no .db: prometheus_client reads every *.db file of the folder)
BOOT_ID = "/proc/sys/kernel/random/boot_id"


class _Stamp(NamedTuple):
    pid: int
    started: str  # in clock ticks since boot (/proc/PID/stat, field 22)
    namespace: str  # "pid:[4026531836]"
    boot: str


def make() -> str:
    """A new folder (mode 0700) stamped as this process's; its path."""
    folder = tempfile.mkdtemp(prefix=PREFIX)
    stamp = _own_stamp()
    if stamp is not None:  # (else never stamped, so never swept)
        staged = os.path.join(folder, f"{STAMP}.new")
        with open(staged, "w", encoding="ascii") as file:
            file.write(" ".join(map(str, stamp)) + "\n")
        os.replace(staged, os.path.join(folder, STAMP))  # (a sweep reads all of it or none)
    return folder


def sweep() -> list[str]:
    """Removes the folders, in the temp folder `make` uses, of this user's supervisors
    that no longer run; the folders removed."""
    here = _own_stamp()
    if here is None:
        return []
    removed = []
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return []
    for entry in entries:
        try:
            mine = (entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_uid == os.getuid())
        except OSError:  # (gone meanwhile)
            continue
        if mine and _gone(entry.path, here):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _gone(folder: str, here: _Stamp) -> bool:
    """Whether the stamp of `folder` proves its supervisor no longer runs."""
    try:
        with open(os.path.join(folder, STAMP), encoding="ascii") as file:
            pid, started, namespace, boot = file.read().split()
        stamp = _Stamp(int(pid), started, namespace, boot)
    except (OSError, ValueError):  # (no stamp, or not one this version writes)
        return False
    if (stamp.boot, stamp.namespace) != (here.boot, here.namespace):
        return False
    try:
        return _started(f"/proc/{stamp.pid}/stat") != stamp.started
    except (FileNotFoundError, ProcessLookupError):  # (ESRCH: going as it is read)
        return True
    except (OSError, IndexError):
        return False


def _own_stamp() -> _Stamp | None:
    """This process's stamp; None where it cannot be told (not Linux, or a /proc of
    another PID namespace than this process's, whose pids are not the ones it sees)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None
        with open(BOOT_ID, encoding="ascii") as file:
            boot = file.read().strip()
        return _Stamp(os.getpid(), _started("/proc/self/stat"),
                      os.readlink("/proc/self/ns/pid"), boot)
    except (OSError, IndexError):
        return None


def _started(stat: str) -> str:
    """When the process of `stat` (/proc/PID/stat) started, in clock ticks since boot."""
    with open(stat, encoding="utf-8", errors="replace") as file:
        # (after the command's name, which may hold ') ': the state is field 3)
        return file.read().rpartition(")")[2].split()[22 - 3]
