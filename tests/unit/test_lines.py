"""A record is one line, whatever its text holds: what a client sent may hold line
breaks of every kind that `str.splitlines` (and terminals) know."""

from __future__ import annotations

from footfall.console.v1 import console_pb2
from google.protobuf import json_format

from server import lines

BREAKS = "a\nb\rc\x85d\u2028e\u2029f\x1bg\x0bh"


def test_a_line_escapes_what_is_not_printable() -> None:
    stored = console_pb2.StoredUserEvent(joined=True, transport=console_pb2.PIXEL)
    stored.user_event.event_type = "search"
    stored.user_event.visitor_id = BREAKS
    stored.user_event.search_query = "rouge é\u2028"
    stored.user_event.event_time.FromSeconds(1_700_000_000)
    line = lines.user_event(stored)
    assert line == ("2023-11-14T22:13:20Z  search               "
                    "visitor=a\\nb\\rc\\x85d\\u2028e\\u2029f\\x1bg\\x0bh "
                    'search="rouge é\\u2028"  [pixel]')
    refused = console_pb2.Rejection(method="/x.Y/Z", message=f"bad {BREAKS}", code=3)
    assert len(lines.rejection(refused).splitlines()) == 1


def test_a_quantity_given_shows_unless_it_is_one() -> None:
    stored = console_pb2.StoredUserEvent()
    stored.user_event.event_type = "add-to-cart"
    for product, quantity in (("a", None), ("b", 1), ("c", 3), ("d", 0), ("e", -2)):
        detail = stored.user_event.product_details.add()
        detail.product.id = product
        if quantity is not None:
            detail.quantity.value = quantity
    assert " products=a,b,c×3,d×0,e×-2 " in lines.user_event(stored)


def test_a_user_event_of_many_products_names_the_first_ten_and_how_many_more() -> None:
    # as a client event's jobs: a search or home-page view may list a page's products,
    # and the line named them all, its revenue and transport far behind
    stored = console_pb2.StoredUserEvent(joined=True, transport=console_pb2.REST)
    stored.user_event.event_type = "home-page-view"
    stored.user_event.visitor_id = "v"
    for i in range(1200):
        stored.user_event.product_details.add().product.id = f"p{i}"
    stored.user_event.product_details[1].quantity.value = 2
    stored.user_event.event_time.FromSeconds(1_700_000_000)
    assert lines.user_event(stored) == (
        "2023-11-14T22:13:20Z  home-page-view       visitor=v "
        "products=p0,p1×2,p2,p3,p4,p5,p6,p7,p8,p9 (+1190 more)  [rest]")
    assert json_format.Parse(lines.as_json(stored), console_pb2.StoredUserEvent()) == stored
    del stored.user_event.product_details[10:]
    assert " products=p0,p1×2,p2,p3,p4,p5,p6,p7,p8,p9  [rest]" in lines.user_event(stored)


def test_json_is_one_ascii_line_that_reads_back() -> None:
    stored = console_pb2.StoredUserEvent()
    stored.user_event.visitor_id = BREAKS + "é"
    text = lines.as_json(stored)
    assert text.isascii() and len(text.splitlines()) == 1
    assert json_format.Parse(text, console_pb2.StoredUserEvent()) == stored


def test_a_client_event_of_a_type_the_contract_does_not_name_still_prints() -> None:
    # Stored before such numbers were refused: the line says the number.
    stored = console_pb2.StoredClientEvent(transport=console_pb2.REST)
    stored.client_event.job_event.type = 999
    stored.client_event.job_event.jobs.append("projects/p/tenants/t/jobs/j1")
    stored.client_event.create_time.FromSeconds(1_700_000_000)
    assert lines.client_event(stored).startswith("2023-11-14T22:13:20Z  type 999 ")


def test_a_client_event_of_many_jobs_names_the_first_ten_and_how_many_more() -> None:
    # an impression names every job of a results page: one of 5,000 made a 44 KB line
    stored = console_pb2.StoredClientEvent(transport=console_pb2.GRPC)
    stored.client_event.event_id = "shown"
    stored.client_event.job_event.type = 1
    stored.client_event.job_event.jobs.extend(f"projects/p/tenants/t/jobs/j{i}"
                                              for i in range(1200))
    stored.client_event.create_time.FromSeconds(1_700_000_000)
    assert lines.client_event(stored) == (
        "2023-11-14T22:13:20Z  IMPRESSION           jobs=j0,j1,j2,j3,j4,j5,j6,j7,j8,j9 "
        "(+1190 more) event=shown  [grpc]")
    del stored.client_event.job_event.jobs[10:]
    assert "jobs=j0,j1,j2,j3,j4,j5,j6,j7,j8,j9 event=shown" in lines.client_event(stored)


def test_a_refusal_repeated_says_how_often_and_when_last() -> None:
    refused = console_pb2.Rejection(method="/x.Y/Z", message="bad", code=3, repeats=4,
                                    key_name="shop")
    refused.time.FromSeconds(1_700_000_000)
    refused.last_time.FromMilliseconds(1_700_000_000_250)
    assert lines.rejection(refused) == ("2023-11-14T22:13:20Z  x.Y/Z  [?]  -  "
                                        "INVALID_ARGUMENT: bad  key=shop times=5 "
                                        "last=2023-11-14T22:13:20.250Z")
    refused.repeats = 0
    assert "times=" not in lines.rejection(refused) and "last=" not in lines.rejection(refused)


def test_the_first_second_of_1970_is_a_time_not_an_unset_one() -> None:
    """`-` stood for an event stamped 1970-01-01T00:00:00Z, which --json and the
    console show as that time."""
    stored = console_pb2.StoredUserEvent()
    stored.user_event.event_type = "home-page-view"
    stored.user_event.event_time.FromSeconds(0)
    assert lines.user_event(stored).startswith("1970-01-01T00:00:00Z  home-page-view")
    stored.user_event.ClearField("event_time")
    assert lines.user_event(stored).startswith("-  home-page-view")


def test_counts_have_thousands_commas_as_copy_says_them() -> None:
    # `reset` said "deleted 1046 client events" where `copy` said "1,060"
    reset = console_pb2.ResetResponse(deleted_events_count=1046, deleted_rejections_count=1)
    assert lines.reset("projects/p/tenants/t", reset) == (
        "reset projects/p/tenants/t: deleted 1,046 client events and 1 refusal")
    assert lines.reset("projects/p", console_pb2.ResetResponse(
        deleted_events_count=3, deleted_products_count=1, deleted_operations_count=2)) == (
        "reset projects/p: deleted 3 events (user and client events), 1 product, 0 refusals "
        "and 2 finished operations")
    found = console_pb2.DataSet(name="projects/p/locations/global/catalogs/c",
                                event_count=1_234_567)
    found.last_event_time.FromSeconds(1_700_000_000)
    assert "/catalogs/c  1,234,567 events  last event" in lines.data_set(found)


def test_a_refusal_repeats_no_violation_its_message_already_says() -> None:
    # a body the gateway cannot unpack is refused with one violation that names no
    # field and whose description is the message: `; : the request body's ...` repeated it
    said = "the request body's Content-Encoding 'compress' is not one this server unpacks"
    refused = console_pb2.Rejection(method="/x.Y/Z", message=said, code=3)
    refused.field_violations.add(description=said)
    refused.field_violations.add(field="user_event.visitor_id", description="is required")
    assert lines.rejection(refused).endswith(
        f"INVALID_ARGUMENT: {said}; user_event.visitor_id: is required")
