"""The console's Insights page in Debian's headless Chromium, against a server
subprocess whose events the official clients wrote: every number the funnel
chart, the time-series charts and the tables show (their labels and data
attributes) is the number footfall.insights.v1 answers over gRPC for the same
question, as the page is driven with the keyboard (steps removed, conditions
set, a breakdown, a time range, sorting, paging). Photographed at a desktop and
a phone width, light and dark. Imports nothing of ours."""

from __future__ import annotations

import asyncio
import datetime
import decimal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from browser.cdp import DevTools, chromium
from browser.pages import focus_and_press, no_problems, open_console, photograph, until
from google.cloud import retail_v2, talent_v4

from .console import Console
from .support import ServerProcess, retail_client, talent_client

SERVICE = "footfall.insights.v1.InsightsService"
PROJECT = "projects/footfall-interop"
CATALOG = f"{PROJECT}/locations/global/catalogs/insights-page"
TENANT = f"{PROJECT}/tenants/insights-page"
T = datetime.datetime(2024, 3, 1, 9, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
SHOP_FUNNEL = ["home-page-view", "detail-page-view", "add-to-cart", "purchase-complete"]
PAGE_SIZE = 20  # rows per page of the page's tables
TYPE = talent_v4.JobEvent.JobEventType
JOBS = [f"{TENANT}/jobs/j{n}" for n in range(1, 4)]

pytestmark = pytest.mark.timeout(240)


def shop_events() -> Iterator[retail_v2.UserEvent]:
    """Twelve visitors over three days: 24 products viewed (more than a page of
    the table), some carts and purchases in three currencies, searches, and a
    custom attribute."""
    currencies = {0: "USD", 4: "EUR", 8: "JPY", 9: "USD"}
    for i in range(12):
        visitor, start = f"v{i:02}", T + (i % 3) * DAY + datetime.timedelta(minutes=7 * i)

        def at(seconds: int, start: datetime.datetime = start) -> datetime.datetime:
            return start + datetime.timedelta(seconds=seconds)

        def products(*ids: str, quantity: int | None = None,
                     price: float = 10.0, currency: str = "USD") -> list[retail_v2.ProductDetail]:
            return [retail_v2.ProductDetail(quantity=quantity, product=retail_v2.Product(
                id=p, price_info=retail_v2.PriceInfo(price=price, currency_code=currency)))
                for p in ids]

        mine, other = f"p{2 * i:02}", f"p{2 * i + 1:02}"
        attributes = {"campaign": retail_v2.CustomAttribute(text=["spring"])} if i % 5 == 0 else {}
        yield retail_v2.UserEvent(event_type="home-page-view", visitor_id=visitor,
                                  event_time=at(0), attributes=attributes)
        if i % 3 == 0:
            yield retail_v2.UserEvent(event_type="search", visitor_id=visitor, event_time=at(20),
                                      search_query=["boots", "caps", "tent", "boots"][i // 3])
        yield retail_v2.UserEvent(event_type="detail-page-view", visitor_id=visitor,
                                  event_time=at(60 + 7 * i), product_details=products(mine))
        yield retail_v2.UserEvent(event_type="detail-page-view", visitor_id=visitor,
                                  event_time=at(90 + 7 * i), product_details=products(other))
        if i % 2 == 0 or i == 9:
            yield retail_v2.UserEvent(event_type="add-to-cart", visitor_id=visitor,
                                      event_time=at(150 + 11 * i), product_details=products(mine))
        if i in currencies:
            currency, quantity, price = currencies[i], i % 3 + 1, 10.0 + i
            yield retail_v2.UserEvent(
                event_type="purchase-complete", visitor_id=visitor, event_time=at(400 + 13 * i),
                product_details=products(mine, quantity=quantity, price=price, currency=currency),
                purchase_transaction=retail_v2.PurchaseTransaction(
                    revenue=price * quantity, currency_code=currency))


def job_events() -> Iterator[talent_v4.ClientEvent]:
    """Four search requests over three jobs, some of them to an application, one to a
    hire."""
    requests = [
        ("r1", [(0, TYPE.IMPRESSION, JOBS), (10, TYPE.VIEW, JOBS[:1]),
                (40, TYPE.APPLICATION_START, JOBS[:1]), (100, TYPE.APPLICATION_FINISH, JOBS[:1]),
                (200, TYPE.SENT_CV, JOBS[:1]), (300, TYPE.INTERVIEW_GRANTED, JOBS[:1]),
                (400, TYPE.HIRED, JOBS[:1])]),
        ("r2", [(0, TYPE.IMPRESSION, JOBS[:2]), (5, TYPE.VIEW, JOBS[1:2]),
                (20, TYPE.APPLICATION_START, JOBS[1:2])]),
        ("r3", [(0, TYPE.IMPRESSION, JOBS[2:]), (30, TYPE.VIEW, JOBS[2:]),
                (35, TYPE.BOOKMARK, JOBS[2:]), (60, TYPE.NOTIFICATION, JOBS[1:])]),
        ("r4", [(0, TYPE.IMPRESSION, JOBS[1:2]), (50, TYPE.APPLICATION_REDIRECT, JOBS[1:2])]),
    ]
    n = 0
    for request_id, steps in requests:
        for seconds, kind, jobs in steps:
            n += 1
            yield talent_v4.ClientEvent(
                request_id=request_id, event_id=f"e{n}",
                create_time=T + datetime.timedelta(hours=n, seconds=seconds),
                job_event=talent_v4.JobEvent(type_=kind, jobs=jobs))


# -- the numbers as the page writes them (format.js) -------------------------------


def count(value: Any) -> str:
    return f"{int(value or 0):,}"


def percent(rate: Any) -> str:
    """A rate above 0 that rounds to 0.0% is "<0.1%"."""
    value = float(rate or 0)
    return "<0.1%" if 0 < value < 0.0005 else f"{value * 100:.1f}%"


def rate_of(rate: Any, of: Any) -> str:
    """A rate of `of` entrants: none of none."""
    return percent(rate) if int(of or 0) else "–"


# Currencies of this test whose minor unit is not the cent (ISO 4217).
MINOR_DIGITS = {"JPY": 0, "KRW": 0}


def money(amount: Any, currency: str) -> str:
    """In the currency's own decimals: "54 JPY", "20.00 USD"."""
    return f"{float(amount or 0):,.{MINOR_DIGITS.get(currency, 2)}f} {currency}"


def duration(text: str | None) -> str | None:
    """"3725s" as "1 h 2 min", the way the page says it."""
    if not text:
        return None
    total = decimal.Decimal(text.rstrip("s"))
    if 0 < total < decimal.Decimal("0.05"):
        return "<0.1 s"
    half_up = decimal.ROUND_HALF_UP  # as JavaScript's toFixed and Math.round
    if total < 60:
        return f"{total.quantize(decimal.Decimal('0.1'), half_up).normalize():f} s"
    rest, shown = int(total.quantize(decimal.Decimal(1), half_up)), []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        n, rest = divmod(rest, size)
        if n or shown:
            shown.append(f"{n} {unit}" if n else "")
        if len(shown) == 2:
            break
    return " ".join(part for part in shown if part)


# -- what the page shows, read from its DOM ----------------------------------------

READ_FUNNEL = """[...document.querySelectorAll('#funnel-chart g.step')].map(g => ({
  type: g.dataset.eventType, entrants: g.dataset.entrants, previous: g.dataset.fromPrevious,
  first: g.dataset.fromFirst, median: g.dataset.median,
  entrantsText: g.querySelector('.entrants').textContent,
  previousText: g.querySelector('.from-previous')?.textContent ?? null,
  firstText: g.querySelector('.from-first')?.textContent ?? null,
  medianText: g.querySelector('.median')?.textContent ?? null}))"""
READ_MARKS = """Object.fromEntries([...document.querySelectorAll(%r)].map(m =>
  [`${m.closest('[data-series]').dataset.series} ${m.dataset.time}`, Number(m.dataset.value)]))"""
# (a cell of a group of counts, the job table's outcomes: each count by its name)
READ_ROWS = """[...document.querySelectorAll(%r)].map(tr =>
  [...tr.querySelectorAll('td')].map(td => td.classList.contains('group')
    ? [...td.querySelectorAll('dl > div')].map(d =>
      `${d.dataset.label} ${d.querySelector('dd').innerText}`)
    : td.innerText))"""


def shown_funnel(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """What the chart must show for RunFunnel's `answer`."""
    steps = []
    for i, step in enumerate(answer["steps"]):
        later = i > 0
        steps.append({
            "type": step["step"]["eventType"], "entrants": str(int(step.get("entrants", 0))),
            "previous": repr(step.get("conversionFromPrevious", 0)).removesuffix(".0"),
            "first": repr(step.get("conversionFromFirst", 0)).removesuffix(".0"),
            "median": step.get("medianTimeFromPrevious", ""),
            "entrantsText": count(step.get("entrants")),
            "previousText": rate_of(step.get("conversionFromPrevious"),
                                    answer["steps"][i - 1].get("entrants")) if later else None,
            "firstText": rate_of(step.get("conversionFromFirst"),
                                 answer["steps"][0].get("entrants")) if later else None,
            "medianText": duration(step.get("medianTimeFromPrevious")) if later else None})
    return steps


def timeline(first: str, last: str, step: datetime.timedelta) -> list[str]:
    begin, end = (datetime.datetime.fromisoformat(t) for t in (first, last))
    times = []
    while begin <= end:
        times.append(begin.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        begin += step
    return times


def shown_events(answer: dict[str, Any], step: datetime.timedelta) -> dict[str, int]:
    """Per 'type time': the count the events chart must mark (0 where no event)."""
    buckets = answer["buckets"]
    times = timeline(buckets[0]["startTime"], buckets[-1]["startTime"], step)
    types = {c["eventType"] for b in buckets for c in b["eventCounts"]}
    marks = {f"{kind} {t}": 0 for kind in types for t in times}
    for bucket in buckets:
        at = bucket["startTime"].replace("Z", ".000Z")
        for c in bucket["eventCounts"]:
            marks[f"{c['eventType']} {at}"] = int(c["count"])
    return marks


def product_row(p: dict[str, Any]) -> list[str]:
    return [p["productId"], count(p.get("views")), count(p.get("addToCarts")),
            count(p.get("purchases")), count(p.get("units")),
            ", ".join(money(r.get("amount"), r["currencyCode"]) for r in p.get("revenue", [])),
            rate_of(p.get("viewToPurchaseRate"), p.get("views"))]


def job_row(j: dict[str, Any]) -> list[str]:
    return [j["job"].split("/")[-1], *(count(j.get(f)) for f in (
        "impressions", "views", "applicationStarts", "applicationFinishes", "redirects",
        "bookmarks")), [f"{name} {count(j.get(f))}" for name, f in (
            ("Notifications", "notifications"), ("CVs sent", "sentCvs"),
            ("Interviews granted", "interviewsGranted"), ("Hires", "hires"))],
        *(rate_of(j.get(rate), j.get(of)) for rate, of in (
            ("viewRate", "impressions"), ("applicationStartRate", "views"),
            ("applicationFinishRate", "applicationStarts")))]


class Page:
    """One tab of the console and the server's insights over gRPC beside it."""

    def __init__(self, devtools: DevTools, session: str, insights: Console) -> None:
        self.devtools, self.session, self.insights = devtools, session, insights

    async def js(self, expression: str) -> Any:
        return await self.devtools.evaluate(self.session, expression)

    async def shows(self, expression: str, expected: Any, what: str) -> None:
        """Waits until `expression` is `expected` on the page; fails showing both."""
        seen: list[Any] = []

        async def check() -> bool:
            seen[:] = [await self.js(expression)]
            return bool(seen[0] == expected)

        try:
            await until(check, what)
        except AssertionError:
            assert seen[0] == expected, what

    async def set_value(self, selector: str, value: Any, event: str = "input") -> None:
        await self.js(f"(e => {{ e.value = {value!r}; e.dispatchEvent(new Event({event!r}, "
                      f"{{bubbles: true}})) }})(document.querySelector({selector!r}))")

    async def press(self, selector: str) -> None:
        await focus_and_press(self.devtools, self.session, selector)

    async def funnel_is(self, **question: Any) -> dict[str, Any]:
        answer = self.insights.call("RunFunnel", **question)
        await self.shows(READ_FUNNEL, shown_funnel(answer), f"the funnel of {question}")
        return answer

    async def rows_are(self, selector: str, rows: list[list[str]], what: str) -> None:
        await self.shows(READ_ROWS % selector, rows, what)


async def see_the_shop(devtools_url: str, server: ServerProcess, insights: Console,
                       folder: Path) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://{server.http_address}/console/#insights?parent={CATALOG}")
        page = Page(devtools, session, insights)
        # The shop funnel, counted per visitor within a day, as RunFunnel answers it.
        funnel = await page.funnel_is(parent=CATALOG, countBy="VISITOR",
                                      conversionWindow="86400s",
                                      steps=[{"eventType": t} for t in SHOP_FUNNEL])
        # The same numbers as a table, opened with the keyboard.
        await page.press("#funnel details.numbers summary")
        await page.rows_are("#funnel details.numbers tbody tr", [
            [f"{i + 1}. {s['step']['eventType']}", count(s.get("entrants")),
             rate_of(s.get("conversionFromPrevious"),
                     funnel["steps"][i - 1 if i else 0].get("entrants")),
             rate_of(s.get("conversionFromFirst"), funnel["steps"][0].get("entrants")),
             duration(s.get("medianTimeFromPrevious")) or ""]
            for i, s in enumerate(funnel["steps"])], "the funnel as a table")

        # Totals per day: every type on every day, visitors, revenue per currency, queries.
        totals = insights.call("ComputeTotals", parent=CATALOG, granularity="DAY", topQueries=10)
        await page.shows(READ_MARKS % "#events-chart circle", shown_events(totals, DAY),
                         "events per type per day")
        await page.shows(READ_MARKS % "#visitors-chart rect", {
            f"distinct visitors {b['startTime'].replace('Z', '.000Z')}": int(b["distinctVisitors"])
            for b in totals["buckets"]}, "distinct visitors per day")
        assert await page.js("document.querySelector('#distinct-visitors').dataset.value") == \
            totals["distinctVisitors"]
        currencies = sorted({r["currencyCode"] for r in totals["revenue"]})
        assert currencies == ["EUR", "JPY", "USD"]
        revenue_days = sorted(r["day"] for r in totals["revenue"])
        days = timeline(f"{revenue_days[0]}T00:00:00+00:00", f"{revenue_days[-1]}T00:00:00+00:00",
                        DAY)
        for currency in currencies:  # one chart each: amounts never added across currencies
            rows = [r for r in totals["revenue"] if r["currencyCode"] == currency]
            marks = {f"{currency} {d}": 0.0 for d in days}
            marks.update({f"{currency} {r['day']}T00:00:00.000Z": r["revenue"] for r in rows})
            await page.shows(READ_MARKS % f"#revenue-{currency} rect", marks, f"{currency} revenue")
            assert money(sum(r["revenue"] for r in rows), currency) in await page.js(
                f"document.querySelector('#revenue-{currency}').closest('figure').innerText")
        await page.rows_are("#top-queries tbody tr", [
            [q["query"], count(q["searches"]), count(q.get("ledToDetailView")),
             percent(int(q.get("ledToDetailView", 0)) / int(q["searches"]))]
            for q in totals["topQueries"]], "the top queries")

        # Per product, most viewed first, a page at a time; sorted by a heading.
        def products(order: str, token: str = "") -> dict[str, Any]:
            return insights.call("ListProductStats", parent=CATALOG, orderBy=order,
                                 pageSize=PAGE_SIZE, pageToken=token)

        first = products("views desc")
        assert first["nextPageToken"]
        await page.rows_are("#products tbody tr", [product_row(p) for p in first["products"]],
                            "the products, most viewed first")
        await photograph(devtools, session, folder, "insights-shop")
        await devtools.color_scheme(session, "dark")
        await photograph(devtools, session, folder, "insights-shop-dark")
        await devtools.color_scheme(session, "light")

        await page.press("#products button.next")
        await page.rows_are("#products tbody tr", [
            product_row(p) for p in products("views desc", first["nextPageToken"])["products"]],
            "the second page of products")
        await page.press("#products button.sort[data-order=purchases]")
        await page.rows_are("#products tbody tr", [
            product_row(p) for p in products("purchases desc")["products"]],
            "the products, most bought first")
        await page.press("#products button.sort[data-order=purchases]")  # again: the other way
        await page.rows_are("#products tbody tr", [
            product_row(p) for p in products("purchases")["products"]],
            "the products, least bought first")
        assert await page.js("document.activeElement.dataset.order") == "purchases"
        assert await page.js("document.querySelector('#products th[aria-sort]')"
                             ".getAttribute('aria-sort')") == "ascending"

        # Per hour.
        await page.set_value("#granularity", "HOUR", "change")
        hourly = insights.call("ComputeTotals", parent=CATALOG, granularity="HOUR", topQueries=10)
        await page.shows(READ_MARKS % "#events-chart circle",
                         shown_events(hourly, datetime.timedelta(hours=1)),
                         "events per type per hour")

        # A type hidden from the chart by its legend's checkbox (the space bar).
        assert await page.js("(e => { e.focus(); return document.activeElement === e })("
                             "document.querySelector('.legend input[data-series=search]'))")
        await devtools.press(session, " ")
        await page.shows(READ_MARKS % "#events-chart circle", {
            mark: value for mark, value in shown_events(hourly, datetime.timedelta(hours=1)).items()
            if not mark.startswith("search ")}, "events per type per hour but searches")

        # An edited funnel: the first step removed (keyboard), a condition, by day.
        await page.press("#funnel li:first-child button.remove")
        assert await page.js("document.activeElement.className") == "add"
        await page.set_value("#step-2-productId", "p00")
        assert await page.js("document.querySelector('#funnel li:nth-child(3) summary')"
                             ".innerText") == "Conditions (1)"
        await page.set_value("#breakdown", "BY_DAY", "change")
        await page.press("#run-funnel")
        question = {"parent": CATALOG, "countBy": "VISITOR", "conversionWindow": "86400s",
                    "breakdown": "BY_DAY", "steps": [
                        {"eventType": "detail-page-view"}, {"eventType": "add-to-cart"},
                        {"eventType": "purchase-complete", "productId": "p00"}]}
        answer = await page.funnel_is(**question)
        await page.rows_are("#funnel-groups tbody tr", [
            [g["key"], *(f"{count(s.get('entrants'))} ({percent(s.get('conversionFromFirst'))})"
                         for s in g["steps"])] for g in answer["groups"]], "the funnel by day")
        assert len(answer["groups"]) == 3

        # A time range: the second day only.
        await page.set_value("#start", "2024-03-02T00:00")
        await page.set_value("#end", "2024-03-03T00:00")
        await page.press(".scope button[type=submit]")
        span = {"startTime": "2024-03-02T00:00:00Z", "endTime": "2024-03-03T00:00:00Z"}
        await page.funnel_is(**question, **span)
        await page.rows_are("#products tbody tr", [product_row(p) for p in insights.call(
            "ListProductStats", parent=CATALOG, orderBy="purchases", pageSize=PAGE_SIZE,
            **span)["products"]], "the products of the second day")
        await photograph(devtools, session, folder, "insights-shop-edited")

        # The question is in the URL: a reload asks it again.
        await page.js("window.old = true; setTimeout(() => location.reload())")
        await until(lambda: page.js("!window.old && !!document.querySelector("
                                    "'#funnel-chart g.step')"), "the page, reloaded")
        await page.funnel_is(**question, **span)

        # A bad question is refused naming its field, and the page says so.
        await page.js("document.querySelector('#funnel li:first-child details').open = true")
        await page.set_value("#step-0-attributeValue", "spring")
        await page.press("#run-funnel")
        await page.shows("document.querySelector('.funnel-result .error')?.innerText",
                         "INVALID_ARGUMENT: steps[0].attribute_value: needs attribute_key",
                         "the refusal")
        await no_problems(devtools, session)


def test_the_insights_page_shows_the_shops_funnel_totals_and_products_as_the_rpcs_answer(
        browser_executable: str, server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel], shots: Path, tmp_path: Path) -> None:
    server = server_factory()
    with retail_client(server.address) as retail:
        for event in shop_events():
            retail.write_user_event(retail_v2.WriteUserEventRequest(parent=CATALOG,
                                                                    user_event=event))
    insights = Console(channels(server), service=SERVICE)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(see_the_shop(devtools_url, server, insights, shots), 200))


async def see_the_job_site(devtools_url: str, server: ServerProcess, insights: Console,
                           folder: Path) -> None:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(
            devtools, f"http://{server.http_address}/console/#insights?parent={TENANT}")
        page = Page(devtools, session, insights)
        await page.funnel_is(parent=TENANT, countBy="REQUEST", conversionWindow="86400s",
                             steps=[{"eventType": t} for t in (
                                 "IMPRESSION", "VIEW", "APPLICATION_START", "APPLICATION_FINISH")])
        jobs = insights.call("ListJobStats", parent=TENANT, orderBy="impressions desc",
                             pageSize=PAGE_SIZE)
        await page.rows_are("#jobs tbody tr", [job_row(j) for j in jobs["jobs"]], "the jobs")
        assert jobs["notes"][0] in await page.js("document.querySelector('#jobs').innerText")
        await photograph(devtools, session, folder, "insights-jobs")
        await devtools.color_scheme(session, "dark")
        await photograph(devtools, session, folder, "insights-jobs-dark")
        await devtools.color_scheme(session, "light")

        # Per job (each job an entrant), the view step of job j3, by job.
        await page.set_value("#count-by", "JOB", "change")
        await page.set_value("#step-1-job", JOBS[2])
        await page.set_value("#breakdown", "BY_ITEM", "change")
        await page.press("#run-funnel")
        answer = await page.funnel_is(
            parent=TENANT, countBy="JOB", conversionWindow="86400s", breakdown="BY_ITEM",
            steps=[{"eventType": "IMPRESSION"}, {"eventType": "VIEW", "job": JOBS[2]},
                   {"eventType": "APPLICATION_START"}, {"eventType": "APPLICATION_FINISH"}])
        await page.rows_are("#funnel-groups tbody tr", [
            [g["key"].split("/")[-1],
             *(f"{count(s.get('entrants'))} ({percent(s.get('conversionFromFirst'))})"
               for s in g["steps"])] for g in answer["groups"]], "the funnel by job")
        await page.press("#jobs button.sort[data-order=application_starts]")
        await page.rows_are("#jobs tbody tr", [job_row(j) for j in insights.call(
            "ListJobStats", parent=TENANT, orderBy="application_starts desc",
            pageSize=PAGE_SIZE)["jobs"]], "the jobs, most applied to first")
        await photograph(devtools, session, folder, "insights-jobs-edited")

        # The last step moved up with the keyboard (the focus moves with it).
        await page.press("#funnel li:nth-child(4) button.up")
        assert await page.js("document.activeElement === "
                             "document.querySelector('#funnel li:nth-child(3) button.up')")
        await page.press("#run-funnel")
        await page.funnel_is(
            parent=TENANT, countBy="JOB", conversionWindow="86400s", breakdown="BY_ITEM",
            steps=[{"eventType": "IMPRESSION"}, {"eventType": "VIEW", "job": JOBS[2]},
                   {"eventType": "APPLICATION_FINISH"}, {"eventType": "APPLICATION_START"}])

        # A time range that ends before it starts: said once, beside the range (each part
        # of the page said the server's INVALID_ARGUMENT), and nothing is asked again.
        await page.set_value("#start", "2024-03-02T00:00")
        await page.set_value("#end", "2024-03-01T00:00")
        await page.press(".scope button[type=submit]")
        await page.shows("document.querySelector('.scope + .error:not([hidden])')?.innerText",
                         "“Until” must come after “From”: nothing was read again.",
                         "the range refused")
        assert await page.js("document.querySelectorAll('.funnel-result .error, "
                             "#jobs .pages .error').length") == 0
        await no_problems(devtools, session)


def test_the_insights_page_shows_a_job_sites_funnel_and_jobs_as_the_rpcs_answer(
        browser_executable: str, server_factory: Callable[..., ServerProcess],
        channels: Callable[[ServerProcess], grpc.Channel], shots: Path, tmp_path: Path) -> None:
    server = server_factory()
    with talent_client(server.address) as talent:
        for event in job_events():
            talent.create_client_event(parent=TENANT, client_event=event)
    insights = Console(channels(server), service=SERVICE)
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        asyncio.run(asyncio.wait_for(see_the_job_site(devtools_url, server, insights, shots),
                                     200))
