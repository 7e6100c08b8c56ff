"""The live feed's refused column in Chromium shows the refusals of product writes
as it shows those of events: a refused CreateProduct with its reason on the line of
the field at fault, and a failed ImportProducts line with its field beside its reason
(kept nowhere before: the column stayed empty)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools, chromium
from .pages import no_problems, open_console, photograph, until
from .test_console import BRANCH, DEADLINE, rest, write


async def open_the_refusals(devtools_url: str, port: int, folder: Path) -> dict[str, Any]:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await until(lambda: devtools.evaluate(
            session, "document.querySelectorAll('#refused details').length === 2"),
            "the two refusals")
        await devtools.evaluate(
            session, "document.querySelectorAll('#refused details').forEach(d => d.open = true)")
        seen = await devtools.evaluate(session, """[...document.querySelectorAll(
            '#refused details')].map(d => ({
              method: d.querySelector('summary strong').innerText,
              marked: [...d.querySelectorAll('pre.json .line.bad')].map(e => e.innerText),
              listed: [...d.querySelectorAll('ul.violations li')].map(e => e.innerText),
              facts: d.querySelector('dl.facts').innerText}))""")
        await photograph(devtools, session, folder, "product-refusals")
        await no_problems(devtools, session)
        # (by method: the import's line may be committed before the create's refusal)
        return {item["method"].replace("\n", "").rpartition("/")[2]: item for item in seen}


def test_product_refusals_show_their_field_in_the_feed(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="someone")
    status, _ = rest(port, "POST", f"/v2/{BRANCH}/products?productId=shoe", {
        "title": "Shoe", "categories": ["Shoes"],
        "priceInfo": {"price": 5, "originalPrice": 4, "currencyCode": "USD"}})
    assert status == 400
    status, operation = rest(port, "POST", f"/v2/{BRANCH}/products:import", {
        "inputConfig": {"productInlineSource": {"products": [
            {"id": "ok", "title": "Ok", "categories": ["C"]},
            {"id": "untitled", "categories": ["C"]}]}}})
    assert status == 200, operation
    deadline = time.monotonic() + DEADLINE
    while not operation.get("done"):
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)
        operation = rest(port, "GET", f"/v2/{operation['name']}")[1]
    with chromium(browser_executable, tmp_path / "profile") as devtools_url:
        seen = asyncio.run(asyncio.wait_for(
            open_the_refusals(devtools_url, port, shots), DEADLINE * 2))
    line, created = seen["ImportProducts"], seen["CreateProduct"]
    assert created["method"].replace("\n", "") == "retail.v2.ProductService/CreateProduct"
    [marked] = created["marked"]
    assert marked.strip().startswith('"originalPrice": 4'), created
    assert "← product.price_info.original_price" in marked, created
    assert line["method"].replace("\n", "") == "retail.v2.ProductService/ImportProducts"
    assert line["listed"] == [
        "input_config.product_inline_source.products[1].title: is required"], line
    assert "IMPORT" in line["facts"] and operation["name"] in line["facts"], line
    # its parent as the call named it (the operation's says branches/0)
    assert line["facts"].startswith(f"Parent\n{BRANCH}\n"), line
