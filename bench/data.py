"""Synthetic events: JSON lines for imports, stored rows for purge and scale runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from footfall.retail.v2 import user_event_pb2

from server.store import EventRow, open_store

BASE_SECONDS = 1_700_000_000  # 2023-11-14T22:13:20Z
TYPES = ("home-page-view", "detail-page-view", "add-to-cart", "search")


def event_json(i: int) -> str:
    """The i-th event as one proto3-JSON line; event i happens at BASE + i seconds."""
    kind = TYPES[i % len(TYPES)]
    extra = ""
    if kind in ("detail-page-view", "add-to-cart"):
        extra = f',"productDetails":[{{"product":{{"id":"sku-{i % 5000}"}},"quantity":1}}]'
    elif kind == "search":
        extra = f',"searchQuery":"query {i % 100}"'
    seconds = BASE_SECONDS + i
    return (f'{{"eventType":"{kind}","visitorId":"visitor-{i % 50000}",'
            f'"sessionId":"session-{i // 10}","eventTime":"{_rfc3339(seconds)}",'
            f'"userInfo":{{"userId":"user-{i % 20000}","userAgent":"Mozilla/5.0 (X11; Linux)",'
            f'"ipAddress":"198.51.100.{i % 250}"}},"uri":"https://shop.example/p/{i % 5000}",'
            f'"attributes":{{"campaign":{{"text":["c{i % 7}"]}}}}{extra}}}')


def _rfc3339(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def write_files(folder: Path, total: int, files: int = 4) -> list[Path]:
    """`total` events spread over `files` JSON-lines files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"part-{k:03d}.json" for k in range(files)]
    per_file = -(-total // files)
    for k, path in enumerate(paths):
        with path.open("w") as handle:
            start = k * per_file
            for i in range(start, min(total, start + per_file)):
                handle.write(event_json(i))
                handle.write("\n")
    return paths


def stored_event(i: int) -> user_event_pb2.UserEvent:
    """The same event as `event_json(i)`, built directly (fast, for filling stores)."""
    kind = TYPES[i % len(TYPES)]
    event = user_event_pb2.UserEvent(
        event_type=kind, visitor_id=f"visitor-{i % 50000}", session_id=f"session-{i // 10}",
        event_time={"seconds": BASE_SECONDS + i},
        user_info={"user_id": f"user-{i % 20000}", "user_agent": "Mozilla/5.0 (X11; Linux)",
                   "ip_address": f"198.51.100.{i % 250}"},
        uri=f"https://shop.example/p/{i % 5000}",
        attributes={"campaign": {"text": [f"c{i % 7}"]}})
    if kind in ("detail-page-view", "add-to-cart"):
        event.product_details.add(product={"id": f"sku-{i % 5000}"}, quantity={"value": 1})
    elif kind == "search":
        event.search_query = f"query {i % 100}"
    return event


def fill_store(url: str, catalog: str, total: int, batch: int = 5000) -> None:
    """Store `total` events directly (no server), as fast as the store takes them."""
    store = open_store(url)
    try:
        for start in range(0, total, batch):
            rows = []
            for i in range(start, min(total, start + batch)):
                event = stored_event(i)
                rows.append(EventRow.from_event(catalog, event, not event.product_details))
            store.write_user_events(rows)
    finally:
        store.close()


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
