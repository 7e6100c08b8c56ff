"""An operation in a few words, as `operations list` and the job log line say it."""

from __future__ import annotations

from footfall.retail.v2 import import_config_pb2
from google.longrunning import operations_pb2
from google.protobuf import any_pb2

from server.operations import records
from server.operations.summary import KIND_WIDTH, KINDS, kind_of, summarize
from server.retail import inventory_operations

OPS = "projects/p/locations/global/catalogs/default_catalog/operations/"


def test_kinds_from_names() -> None:
    assert kind_of(OPS + "import-user-events-123") == "import-user-events"
    assert kind_of(OPS + "purge-user-events-retention-476268") == "purge-user-events"
    assert kind_of(OPS.replace("operations/", "branches/0/operations/") +
                   "import-products-9") == "import-products"
    assert kind_of(OPS + "something-else-42") == "something-else"


def test_a_running_import_shows_its_progress() -> None:
    op = records.operation(OPS + "import-user-events-1",
                           import_config_pb2.ImportMetadata(success_count=1200, failure_count=3))
    summary = summarize(op)
    assert (summary.state, summary.kind, summary.counts, summary.error) == (
        "running", "import-user-events", {"success_count": 1200, "failure_count": 3}, "")
    assert summary.line() == (f"running   import-user-events        {OPS}import-user-events-1 "
                              "success_count=1200 failure_count=3")


def test_every_kind_s_name_starts_in_one_column() -> None:
    # A kind over 20 characters (remove-fulfillment-places) pushed its name right.
    kinds = (*KINDS, *inventory_operations.KINDS)
    assert KIND_WIDTH == max(map(len, kinds))
    lines = [summarize(operations_pb2.Operation(name=f"{OPS}{kind}-1", done=True)).line()
             for kind in kinds]
    assert len({line.index(OPS) for line in lines}) == 1, lines


def test_an_unknown_payload_type_is_left_out_not_a_crash() -> None:
    op = operations_pb2.Operation(name=OPS + "x-1", done=True)
    op.metadata.CopyFrom(any_pb2.Any(type_url="type.googleapis.com/no.such.Type", value=b"\x08"))
    op.error.code, op.error.message = 13, "the operation failed; see the server log"
    summary = summarize(op)
    assert (summary.state, summary.counts) == ("failed", {})
    assert summary.error == "INTERNAL: the operation failed; see the server log"
