"""The collector as `serve` leaves it (app.tune_collector), in an interpreter of its
own: the test runner's collector is left as it is."""

from __future__ import annotations

import subprocess
import sys

# Each gRPC call leaves some 14 objects in reference cycles, which only a collection
# frees; what a young collection walks, it holds the loop for (every caller's call
# with it). At 10,000 a collection freed about 9,000 such objects each ~700 durable
# writes and held the loop 3-6 ms; bounded so, it takes about half a millisecond.
MOST_WALKED = 2_500

YOUNG_COLLECTIONS = """
import gc
from server import app
app.tune_collector()
walked = []

def note(phase, info):
    if phase == "start" and info["generation"] == 0:
        walked.append(gc.get_count()[0])

gc.callbacks.append(note)
for _ in range(100_000):  # garbage in cycles, as calls leave it
    cycle = []
    cycle.append(cycle)
gc.callbacks.remove(note)
print(len(walked), max(walked))
"""


def test_a_young_collection_walks_a_bounded_number_of_objects() -> None:
    done = subprocess.run([sys.executable, "-c", YOUNG_COLLECTIONS], capture_output=True,
                          text=True, timeout=60, check=True)
    collections, most = map(int, done.stdout.split())
    assert collections >= 5  # (the garbage was collected as it came)
    assert most <= MOST_WALKED


# A middle collection promotes what it finds alive to the old generation, and every ten
# of them set off a full collection, which walks every object alive since start-up (a
# call held unread, a watch): at a young collection each 2,000 allocations and Python's
# 10, middle ones came every 20,000, and with 3,300 calls held a full one (57-90 ms of
# the loop) every ~40,000 durable writes. Every 100,000, as at 10,000 and 10.
GARBAGE = 300_000
MOST_MIDDLE = GARBAGE // 100_000 + 1

MIDDLE_COLLECTIONS = """
import gc
from server import app
app.tune_collector()
middle = []
gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 1
                    and middle.append(1))
for _ in range(GARBAGE):  # garbage in cycles, as calls leave it
    cycle = []
    cycle.append(cycle)
print(len(middle))
""".replace("GARBAGE", str(GARBAGE))


def test_middle_collections_come_every_100_000_allocations() -> None:
    done = subprocess.run([sys.executable, "-c", MIDDLE_COLLECTIONS], capture_output=True,
                          text=True, timeout=60, check=True)
    assert 1 <= int(done.stdout) <= MOST_MIDDLE
