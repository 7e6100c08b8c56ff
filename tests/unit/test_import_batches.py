"""An import's batches: each says where reading stands after it, and reading again
from there yields exactly the batches that followed, so a job resumed from any
checkpoint reads every line once (issue 11, item 3: the batch as a record)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from footfall.retail.v2 import import_config_pb2, user_event_pb2

from server.retail import bulk_import
from server.retail.bulk_import import Batch, ImportState, Position
from server.retail.import_events import ImportJob, unjoined_row

MAX_EVENT_BYTES = 200  # lines of more than 250 bytes are skipped
SMALL_BATCH = 3
PARENT = "projects/p/locations/global/catalogs/default_catalog"
NOW_S = 1_714_564_800  # 2024-05-01T12:00:00Z: the job's time


def line(visitor: str) -> bytes:
    return (b'{"eventType": "home-page-view", "visitorId": "%s", '
            b'"eventTime": "2024-01-01T00:00:00Z"}\n' % visitor.encode())


def flat(batches: list[Batch[user_event_pb2.UserEvent]]) -> list[str]:
    """Every item and failure the batches hold, in order."""
    return [item if isinstance(item, str) else item.where for b in batches for item in b.items]


def failures(batch: Batch[user_event_pb2.UserEvent]) -> list[str]:
    return [item for item in batch.items if isinstance(item, str)]


def read(job: ImportJob, request: import_config_pb2.ImportUserEventsRequest,
         files: list[str], start: Position) -> list[Batch[user_event_pb2.UserEvent]]:
    return list(job._batches(request, files, start, lambda: None, NOW_S))


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "BATCH", SMALL_BATCH)


def test_reading_from_any_batch_end_yields_the_batches_after_it(tmp_path: Path) -> None:
    bucket = tmp_path / "shop"
    bucket.mkdir()
    first = bucket / "a.json"
    first.write_bytes(line("a1") + b"\n" + b"{not json\n" + line("a2") + line("a3")
                      + b"x" * 400 + b"\n" + line("a4"))
    second = bucket / "b.json"
    second.write_bytes(line("b1") + line("b2"))
    files = [str(first), str(second)]
    job = ImportJob(tmp_path, strict_event_types=False, max_event_bytes=MAX_EVENT_BYTES)
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)

    batches = read(job, request, files, Position())

    assert [unjoined_row(item.message, PARENT, (0, 0)).visitor_id
            for b in batches for item in b.items
            if not isinstance(item, str)] == ["a1", "a2", "a3", "a4", "b1", "b2"]
    assert [f.split(": ")[0] for b in batches for f in failures(b)] == \
        ["gs://shop/a.json line 3", "gs://shop/a.json line 6"]
    # each in its place among the lines read
    assert [f.split(": ")[0] for f in flat(batches)][:6] == [
        "gs://shop/a.json line 1", "gs://shop/a.json line 3", "gs://shop/a.json line 4",
        "gs://shop/a.json line 5", "gs://shop/a.json line 6", "gs://shop/a.json line 7"]
    assert batches[-1].end == Position(file=2)  # past the last file
    for i, batch in enumerate(batches):
        assert flat(read(job, request, files, batch.end)) == flat(batches[i + 1:]), i
    # and the checkpoint a batch leaves is where the next one starts
    state = ImportState(files=files, started=True)
    for i, batch in enumerate(batches):
        state = state.after(batch.end, len(batch.items) - len(failures(batch)),
                            failures(batch))
        assert flat(read(job, request, files, state.position)) == flat(batches[i + 1:]), i
    assert (state.success, state.failure) == (6, 2)


def test_inline_batches_end_at_the_next_item() -> None:
    request = import_config_pb2.ImportUserEventsRequest(parent=PARENT)
    events = request.input_config.user_event_inline_source.user_events
    for i in range(7):
        events.add(event_type="home-page-view", visitor_id=f"v{i}", event_time={"seconds": i})
    job = ImportJob(Path("/nonexistent"), strict_event_types=False)

    batches = read(job, request, [], Position())

    assert [b.end for b in batches] == [Position(index=3), Position(index=6),
                                        Position(index=7)]
    assert [item.where for item in batches[1].items] == [
        f"input_config.user_event_inline_source.user_events[{i}]" for i in (3, 4, 5)]
    assert flat(read(job, request, [], Position(index=6))) == flat(batches[2:])


def test_an_errors_file_line_carries_the_line_number_of_its_file_only() -> None:
    """Google's errors files: `"details": [{"@type": ".../google.protobuf.Struct",
    "value": {"line_number": N}}]`; only for a failure of a line of the batch's file
    (a file whose name holds " line 2: " itself is not misread), none inline."""
    uri = "gs://shop/odd line 2: name.json"
    written = bulk_import._error_lines(
        [f"{uri} line 7: user_event.visitor_id: is required", f"{uri} line 8: not JSON",
         "input_config.user_event_inline_source.user_events[1].visitor_id: is required"], uri)
    statuses = [json.loads(line) for line in written.splitlines()]
    assert [s.get("details", [{}])[0].get("value") for s in statuses] == [
        {"line_number": 7}, {"line_number": 8}, None]
    assert statuses[0]["details"][0]["@type"] == "type.googleapis.com/google.protobuf.Struct"
    assert all(s["code"] == 3 for s in statuses)
    inline = json.loads(bulk_import._error_lines(["products[0].title: is required"], None))
    assert inline == {"code": 3, "message": "products[0].title: is required"}
