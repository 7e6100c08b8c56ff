"""The bench's compiled watchers (bench/watchers.cc) against a real server: every
stream's count must be exactly what was written, with batches of many events."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import watch, write  # noqa: E402
from bench.common import footfall, h2load  # noqa: E402


@pytest.fixture(scope="module")
def built() -> Path:
    if shutil.which("h2load") is None:
        pytest.skip("LOUD SKIP: h2load missing (Debian's nghttp2-client); "
                    "`make test-tools` installs it")
    program = watch.cpp_watchers()
    if program is None:
        pytest.skip("LOUD SKIP: no grpc++ to build bench/watchers.cc; "
                    "`make test-tools` installs it")
    return program


@pytest.mark.timeout(120)
@pytest.mark.parametrize("batches", [True, False], ids=["batches", "events"])
def test_cpp_watchers_count_exactly_what_was_written(built: Path, batches: bool) -> None:
    frame = write.frame_file()
    try:
        with footfall() as server:
            # stored before the watches open: their first message holds all 300 (after_id 0)
            h2load(server.port, write.PATH, frame, 8, 300)
            group = watch.Watchers(server.port, 5, batches, client="cpp")
            try:
                group.wait_for(300, 20)  # raises when one has more, or fewer in time
                h2load(server.port, write.PATH, frame, 8, 200)
                group.wait_for(500, 20)
                assert group.counts() == [500] * 5
            finally:
                group.close()
            assert group.process.returncode == 0
    finally:
        frame.unlink()



@pytest.mark.timeout(120)
def test_sends_measures_a_bare_grpc_aio_server_feeding_the_watchers(built: Path) -> None:
    out = watch.sends((1, 3), watchers=3, pace=0.05, seconds=0.5)
    assert [run["events"] for run in out["runs"]] == [1, 3]
    for run in out["runs"]:  # (how many: the machine's pace, not asserted)
        assert run["messages"] > 0 and run["server_cpu_us_per_message"] > 0
    assert "server_us_per_kib" in out
