"""The URLs of long requests are not kept once answered (server/http/url_cache.py):
yarl keeps the URLs of the last 128 distinct request targets, and refused pixels of
long URLs held a hundred megabytes of the server after their answers."""

from __future__ import annotations

import gc
import http.client
import json
import time
import urllib.parse

import yarl

from server.app import Running
from server.http.url_cache import LONG_TARGET

PIXEL = "/v2/projects/p/locations/global/catalogs/default_catalog/userEvents:collect"
BOUND = 10.0  # seconds


def long_urls_kept() -> int:
    """The URLs of the server's process whose query is longer than LONG_TARGET."""
    gc.collect()
    return sum(1 for url in gc.get_objects()
               if type(url) is yarl.URL and len(url.raw_query_string) > LONG_TARGET)


def test_the_urls_of_long_pixels_are_let_go_once_answered(served: Running) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=BOUND)
    for i in range(20):  # each distinct, 60 KB (refused: over a GET's 16 KiB of event)
        event = {"eventType": "home-page-view", "visitorId": f"v{i}", "uri": "x" * 60_000}
        connection.request("GET", f"{PIXEL}?" + urllib.parse.urlencode(
            {"userEvent": json.dumps(event)}))
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200 and answer.getheader("X-Footfall-Error")
    # a short one, which yarl may keep: the caches are cleared after the long ones only
    connection.request("GET", f"{PIXEL}?userEvent=" + urllib.parse.quote(
        json.dumps({"eventType": "home-page-view", "visitorId": "v"})))
    connection.getresponse().read()
    connection.close()
    deadline = time.monotonic() + BOUND  # (each is let go once its answer is written)
    while (kept := long_urls_kept()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kept == 0
