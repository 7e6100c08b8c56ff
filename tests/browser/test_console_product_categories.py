"""The Products page shows a product's categories one a line: joined by ", ", two
categories of paths ("Camping > Tents", "Sale > Outdoor") read as one path
("Camping > Tents, Sale > Outdoor"), and a category holding a comma as two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.app import Running

from .cdp import DevTools
from .pages import go, in_chromium, no_problems, open_console, photograph
from .test_console import BRANCH, rest, write

CATEGORIES = ["Camping > Tents > Ultralight", "Sale > Boots, shoes and socks"]


async def read_the_products(devtools_url: str, port: int, folder: Path) -> Any:
    async with DevTools.connect(devtools_url) as devtools:
        session = await open_console(devtools, f"http://127.0.0.1:{port}/console/")
        await go(devtools, session, "products", "main tbody tr")
        cells = await devtools.evaluate(session, """[...document.querySelectorAll(
            'main tbody tr td:nth-child(3) .categories')].map(
              c => [...c.children].map(line => line.innerText))""")
        # a path wrapped on a phone goes on indented (a hanging indent), so that its
        # second line is not read as a category of its own
        indents = await devtools.evaluate(session, """[...document.querySelectorAll(
            'main tbody .categories > div')].map(line => [
              parseFloat(getComputedStyle(line).paddingLeft),
              parseFloat(getComputedStyle(line).textIndent)])""")
        assert indents and all(pad > 0 and indent == -pad for pad, indent in indents), indents
        await photograph(devtools, session, folder, "product-categories")
        await no_problems(devtools, session)
        return cells


def test_each_category_of_a_product_is_a_line_of_its_own(
        browser_executable: str, running: Running, shots: Path, tmp_path: Path) -> None:
    port = running.http_port
    write(port, eventType="home-page-view", visitorId="v1")
    status, answer = rest(port, "POST", f"/v2/{BRANCH}/products?productId=tent-1",
                          {"title": "Tent", "categories": CATEGORIES})
    assert status == 200, answer
    cells = in_chromium(browser_executable, tmp_path / "profile", read_the_products, port, shots)
    assert cells == [CATEGORIES], cells
