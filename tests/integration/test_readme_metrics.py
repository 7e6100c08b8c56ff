"""README.md's table of metrics ("Metrics and logs") names every family that `/metrics`
serves, and nothing it does not: a metric added, renamed or dropped shows here."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from server.app import Running

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(footfall_\w+)")
HELP = re.compile(r"^# HELP (footfall_\w+) ", re.MULTILINE)


def documented() -> set[str]:
    """The metric names of the README's table (its rows' first cells, labels left out)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Metrics and logs", 1)[1].split("\n### ", 1)[0]
    return {found[1] for line in section.splitlines() if (found := ROW.match(line))}


def test_the_readme_names_every_metric_served(served: Running) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{served.http_port}/metrics",
                                timeout=10) as answer:
        page = answer.read().decode()
    # (prometheus_client's `_created` samples: each counter's start time, not a metric)
    served_names = {name for name in HELP.findall(page) if not name.endswith("_created")}
    assert served_names == documented()
    assert "\nprocess_cpu_seconds_total " in page  # the table's `process_*` row
