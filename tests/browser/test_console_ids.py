"""Identifiers a client chose (a visitor id of 128 characters, Google's most) wrap
within a bounded width: one such id made the events table's Visitor column 1,231 px
wide at a desktop's width, pushed User, Came by and Joined out of sight, and broke
every event type over three lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import in_chromium, no_problems, open_console, photograph, until
from .test_console import write

LONG_VISITOR = "visitor-" + "0123456789abcdef" * 7 + "x" * 8  # 128 characters


async def events_table(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/#events")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('.results tbody tr').length === 2"),
            "the events")
        measured = await devtools.evaluate(session, """(() => {
            const box = document.querySelector('.results .table');
            const width = (label) => document.querySelector(
                `.results td[data-label="${label}"]`).getBoundingClientRect();
            return {box: box.clientWidth, table: box.scrollWidth,
                    visitor: width('Visitor').width, type: width('Type').height,
                    typeLine: parseFloat(getComputedStyle(
                        document.querySelector('.results td[data-label="Type"]')).lineHeight)};
        })()""")
        await photograph(devtools, session, folder, "events-long-visitor")
        await no_problems(devtools, session)
        return dict(measured)


def test_a_long_visitor_id_wraps_within_its_column(browser_executable: str, running: Running,
                                                   shots: Path, tmp_path: Path) -> None:
    assert len(LONG_VISITOR) == 128
    write(running.http_port, eventType="detail-page-view", visitorId=LONG_VISITOR,
          productDetails=[{"product": {"id": "p"}}])
    write(running.http_port, eventType="home-page-view", visitorId="short")
    seen = in_chromium(browser_executable, tmp_path / "profile", events_table,
                       running.http_port, shots)
    assert seen["table"] <= seen["box"], seen  # no column out of sight
    assert seen["visitor"] < seen["box"] / 2, seen  # (it was 1,231 px of 1,248)
    # "detail-page-view" on one line (a cell's padding aside), not broken at its hyphens
    assert seen["type"] < 2 * seen["typeLine"] + 12, seen
