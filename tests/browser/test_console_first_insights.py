"""The Insights page as a newcomer's first day of events meets it (h9): "Events per type"
of a single day is a bar a type side by side, not a dot a type (four series were drawn
on one point, and those of equal counts lay on one another: one colour of a legend of
four showed); the funnel says who enters it (a shop's first funnel, from home-page-view,
showed 1 purchase of 19, and nothing said why)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import shown, text_of
from .test_console import CATALOG, DEADLINE, write

BARS = ("[...document.querySelectorAll('#events-chart svg g.series')].map(g => "
        "[g.dataset.series, [...g.querySelectorAll('rect.bar')].map(r => "
        "[Math.round(r.getBBox().x), Math.round(r.getBBox().height)])])")


async def one_days_chart(devtools_url: str, port: int, folder: Path) -> Any:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, f"insights?parent={CATALOG}",
                              "#events-chart svg g.series", "the events chart", folder,
                              "insights-one-day")
        return await devtools.evaluate(session, BARS)


async def funnel_entry(devtools_url: str, port: int, folder: Path) -> str:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, f"insights?parent={CATALOG}",
                              "#funnel-entry", "the funnel", folder, "insights-funnel-entry")
        return await text_of(devtools, session, "#funnel-entry")


def test_a_single_days_events_per_type_are_bars_side_by_side(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    for n in range(2):  # two types of the same count, one of another
        write(running.http_port, eventType="home-page-view", visitorId=f"v{n}")
        write(running.http_port, eventType="search", visitorId=f"v{n}", searchQuery="tent")
    write(running.http_port, eventType="category-page-view", visitorId="v0",
          pageCategories=["tents"])
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        bars = asyncio.run(asyncio.wait_for(
            one_days_chart(devtools_url, running.http_port, shots), DEADLINE))
    drawn = {name: marks for name, marks in bars if marks}
    assert sorted(drawn) == ["category-page-view", "home-page-view", "search"], bars
    assert all(len(marks) == 1 for marks in drawn.values()), bars
    lefts = sorted(marks[0][0] for marks in drawn.values())
    assert len(set(lefts)) == 3, bars  # side by side, none on another
    heights = {name: marks[0][1] for name, marks in drawn.items()}
    assert heights["home-page-view"] == heights["search"] > heights["category-page-view"] > 0, \
        bars


def test_the_funnel_says_who_enters_it(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # a buyer who came in by a search: in no step of the shop funnel
    write(running.http_port, eventType="search", visitorId="buyer", searchQuery="tent")
    write(running.http_port, eventType="purchase-complete", visitorId="buyer",
          productDetails=[{"product": {"id": "tent"}, "quantity": 1}],
          purchaseTransaction={"revenue": 10, "currencyCode": "EUR"})
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        said = asyncio.run(asyncio.wait_for(
            funnel_entry(devtools_url, running.http_port, shots), DEADLINE))
    assert said.startswith("Only a visitor with an event of step 1 (home-page-view) in the "
                           "range enters: one that began elsewhere is not counted"), said


# The labels of a chart's y axis (its ticks, right-aligned left of the plot).
Y_LABELS = ("[...document.querySelectorAll('#{} svg text.axis[text-anchor=end]')]"
            ".map(t => t.textContent)")


async def axes_of_one_visitor(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await shown(devtools, port, f"insights?parent={CATALOG}",
                              "#visitors-chart svg", "the visitors chart", folder,
                              "insights-one-visitor")
        return {chart: await devtools.evaluate(session, Y_LABELS.format(chart))
                for chart in ("events-chart", "visitors-chart")}


def test_an_axis_of_counts_has_whole_ticks(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    # One visitor's first day read "0, 0.25, 0.5, 0.75, 1" visitors (and ten, "7.5").
    write(running.http_port, eventType="home-page-view", visitorId="alone")
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        labels = asyncio.run(asyncio.wait_for(
            axes_of_one_visitor(devtools_url, running.http_port, shots), DEADLINE))
    for chart, ticks in labels.items():
        assert ticks and all(tick.isdigit() for tick in ticks), (chart, ticks)
        assert ticks[-1] == "1", (chart, ticks)
