"""A served process gives large blocks back when they are freed (malloc_tuning), in a
process of its own: the setting is the whole process's."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Large blocks freed between small ones kept (as a server's requests are, between what
# their calls leave alive): what the process still holds once they are all freed.
_FREED_AND_KEPT = """
import sys
from server import malloc_tuning

if sys.argv[1] == "served":
    assert malloc_tuning.return_large_blocks()

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) << 10

before, kept = rss(), []
for _ in range(3):
    blocks = []
    for _ in range(8):
        blocks.append(b"x" * (9 << 20))
        kept.append(b"y" * (200 << 10))  # (from the heap, after the block)
    del blocks
print(rss() - before)
"""


def _left(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", _FREED_AND_KEPT, how], capture_output=True,
                          text=True, timeout=60, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_large_blocks_freed_are_given_back() -> None:
    """Three rounds of 8 blocks of 9 MiB: left in the heap by glibc's own threshold
    (which rose to 9 MiB once the first was freed), given back with it fixed."""
    assert _left("served") < 16 << 20
    assert _left("plain") > 48 << 20  # (what the setting is for)
