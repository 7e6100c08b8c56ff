"""`python -m bench.console paced` (refusals kept and not kept, served at the same
moment) runs end to end on a tiny size; nothing here asserts on speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(200)
def test_kept_and_not_kept_refusals_are_measured_side_by_side() -> None:
    if shutil.which("h2load") is None:
        pytest.skip("LOUD SKIP: h2load missing (Debian's nghttp2-client); "
                    "`make test-tools` installs it")
    out = subprocess.run([sys.executable, "-m", "bench.console", "paced", "--reps", "1",
                          "--seconds", "1"], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert set(result["server_cpu_per_second"]) == {"kept", "not_kept"}
    [ratio] = result["ratio_kept_to_not_kept"]["this"]["each"]
    assert ratio > 0
