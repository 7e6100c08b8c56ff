"""server.cores: a --processes server process keeps to a core of its own, unless the
server has fewer cores than processes. Each case in a process of its own (a kept
process stays kept)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CORES = sorted(os.sched_getaffinity(0))

KEEP = """
import os
import sys

from server import cores

kept = cores.keep_to(int(sys.argv[1]), int(sys.argv[2]))
print(kept, sorted(os.sched_getaffinity(0)), sorted(cores.allowed()))
"""


def kept(index: int, count: int) -> str:
    return subprocess.run([sys.executable, "-c", KEEP, str(index), str(count)],
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


@pytest.mark.skipif(len(CORES) < 2, reason="one core: nothing to keep to")
def test_the_last_of_as_many_processes_as_cores_keeps_to_the_last_core() -> None:
    last = len(CORES) - 1
    assert kept(last, len(CORES)) == f"{CORES[last]} {[CORES[last]]} {CORES}"


@pytest.mark.skipif(len(CORES) < 2, reason="one core: nothing to keep to")
def test_more_processes_than_cores_keep_to_none() -> None:
    # process 0 of one more than the cores: not kept (cores[0] would serve two processes)
    assert kept(0, len(CORES) + 1) == f"None {CORES} {CORES}"
