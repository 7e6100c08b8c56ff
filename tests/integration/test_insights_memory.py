"""An insight's peak memory is bounded by what it must hold (per entrant, per
product, per query), not by the events of its range: each question is asked in
a fresh Python process over a SQLite store of 300,000 of the bench's events
(bench/insights.py: 10,000 visitors), and its growth of VmHWM (/proc) is checked
against a generous bound. Before the reads were streamed, these took 35-70 MB at
300,000 events and grew with them (1M: 69, 97 and 166 MB); streamed, 5-16 MB
at 1M."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.insights import fill

EVENTS = 300_000
BOUND_MB = 20
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('insights-memory')}/events.db"
    fill(url, EVENTS)
    yield url


@pytest.mark.parametrize("question", ["shop_funnel", "product_funnel", "totals"])
def test_an_insight_holds_per_entrant_state_not_every_event(store_url: str,
                                                           question: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.insights_memory", "--url", store_url,
                           "--events", str(EVENTS), "--child", question],
                          check=True, capture_output=True, text=True, cwd=ROOT, timeout=300)
    measured = json.loads(done.stdout)
    assert measured["peak_growth_mb"] < BOUND_MB, measured
