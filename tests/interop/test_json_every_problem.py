"""JSON with several wrong values is refused naming each, in one INVALID_ARGUMENT, over
every road JSON takes into a `footfall serve` subprocess: REST bodies (retail writes,
inline imports, talent client events), the pixel (the official client's
CollectUserEvent and a browser's GET), lines of imported files; a request with
thousands is told of the first hundred and counted the rest. Nothing is stored.
(json_format stops at the first: each was refused naming one field.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2
from google.rpc import error_details_pb2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_client_events,
    count_events,
    finish,
    gcs_path,
    put_gcs,
)

# The new user's event of the review: three fields, each of the wrong type.
THREE_WRONG = {"eventType": 3, "visitorId": True, "eventTime": "yesterday"}
THREE_FIELDS = ["event_type", "visitor_id", "event_time"]
# Wrong deeper down: a list's element and a map's entry, beside a right field.
NESTED_WRONG = {"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z",
                "productDetails": [{"product": {"id": "tent"}, "quantity": "two"}],
                "attributes": {"colour": {"text": [7]}}, "userInfo": {"userId": 5}}


def violations(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 400, answer.text
    [bad] = [d for d in answer.json()["error"]["details"]
             if d["@type"].endswith("google.rpc.BadRequest")]
    return {v["field"]: v["description"] for v in bad["fieldViolations"]}


def test_a_rest_write_names_every_wrong_field(server: ServerProcess, catalog: str) -> None:
    url = f"http://{server.http_address}/v2/{catalog}/userEvents:write"
    found = violations(requests.post(url, json=THREE_WRONG, timeout=RPC_DEADLINE))
    assert sorted(found) == sorted(f"user_event.{f}" for f in THREE_FIELDS), found
    assert "must be a JSON string, got a number, 3" in found["user_event.event_type"], found
    assert "'yesterday'" in found["user_event.event_time"], found
    nested = violations(requests.post(url, json=NESTED_WRONG, timeout=RPC_DEADLINE))
    assert sorted(nested) == sorted([
        "user_event.product_details[0].quantity", "user_event.attributes['colour'].text[0]",
        "user_event.user_info.user_id"]), nested
    assert count_events(server.store, catalog, server.workdir) == 0


def test_an_inline_import_over_rest_names_each_event_at_fault(
        server: ServerProcess, catalog: str) -> None:
    good = {"eventType": "home-page-view", "visitorId": "v", "eventTime": "2024-05-20T10:00:00Z"}
    answer = requests.post(f"http://{server.http_address}/v2/{catalog}/userEvents:import",
                           json={"inputConfig": {"userEventInlineSource": {
                               "userEvents": [good, THREE_WRONG, {**good, "sessionId": 9}]}}},
                           timeout=RPC_DEADLINE)
    inline = "input_config.user_event_inline_source.user_events"
    assert sorted(violations(answer)) == sorted(
        [f"{inline}[1].{f}" for f in THREE_FIELDS] + [f"{inline}[2].session_id"])
    assert count_events(server.store, catalog, server.workdir) == 0


def test_the_pixel_names_every_wrong_field(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    text = json.dumps(THREE_WRONG)
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": text},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [f"user_event.{f}" for f in THREE_FIELDS])
    answer = requests.get(f"http://{server.http_address}/v2/{catalog}/userEvents:collect",
                          params={"userEvent": text}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200  # (a browser's pixel is always its GIF)
    said = answer.headers["X-Footfall-Error"]
    assert all(f"user_event.{f}: " in said for f in THREE_FIELDS), said
    assert count_events(server.store, catalog, server.workdir) == 0


def test_an_import_line_names_every_wrong_field(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    lines = put_gcs(server.gcs_root, f"{gcs_folder}/events.json",
                    [json.dumps(THREE_WRONG), json.dumps(NESTED_WRONG)])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [lines]}}},
        timeout=RPC_DEADLINE)
    first, second = [s.message for s in finish(operation).error_samples]
    assert first.startswith(f"{lines} line 1: not a UserEvent: "), first
    assert all(f"{f}: " in first for f in THREE_FIELDS), first
    assert all(f"{f}: " in second for f in ("product_details[0].quantity",
                                             "attributes['colour'].text[0]",
                                             "user_info.user_id")), second
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_talent_client_event_over_rest_names_every_wrong_field(
        server: ServerProcess, tenant: str) -> None:
    event: dict[str, Any] = {"requestId": "r-1", "eventId": "e-1", "createTime": 1733300000,
                             "jobEvent": {"type": "SEEN", "jobs": [f"{tenant}/jobs/j-1"]}}
    answer = requests.post(f"http://{server.http_address}/v4/{tenant}/clientEvents",
                           json=event, timeout=RPC_DEADLINE)
    found = violations(answer)
    assert sorted(found) == ["client_event.create_time", "client_event.job_event.type"], found
    assert "SEEN" in found["client_event.job_event.type"], found
    assert count_client_events(server.store, tenant, server.workdir) == 0


def test_ten_thousand_wrong_values_are_told_of_a_hundred_and_counted_to_a_bound(
        server: ServerProcess, retail: retail_v2.UserEventServiceClient, catalog: str) -> None:
    # Each wrong value is parsed once more to name it: past 1,000 found the walk stops
    # (2,700 in a body of 77 KB took 23 ms of CPU to refuse, against 6.4 ms to accept)
    event = {"eventType": "home-page-view", "visitorId": "v",
             "attributes": {f"k{i:05}": {"text": [i]} for i in range(10_000)}}
    answer = requests.post(f"http://{server.http_address}/v2/{catalog}/userEvents:write",
                           json=event, timeout=RPC_DEADLINE)
    assert answer.status_code == 400 and len(answer.content) < 64 * 1024, len(answer.content)
    [bad] = [d for d in answer.json()["error"]["details"]
             if d["@type"].endswith("google.rpc.BadRequest")]
    listed = bad["fieldViolations"]
    assert [v["field"] for v in listed[:100]] == [
        f"user_event.attributes['k{i:05}'].text[0]" for i in range(100)], listed[:100]
    assert listed[-1] == {"description": "and more than 900 other violations"}, listed[-1]
    assert len(listed) == 101
    assert answer.json()["error"]["message"].endswith(
        "user_event.attributes['k00099'].text[0]: Invalid JSON payload received: must be a "
        "JSON string, got a number, 99; and more than 900 other violations")
    # over gRPC, its trailers cut to fewer, the count stays a lower bound
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": json.dumps(event)},
                                  timeout=RPC_DEADLINE)
    [details] = [d for d in refused.value.details
                 if isinstance(d, error_details_pb2.BadRequest)]
    kept = len(details.field_violations) - 1
    assert details.field_violations[-1].description == \
        f"and more than {1_000 - kept} other violations", details.field_violations[-1]
    assert refused.value.message.endswith(" other violations"), refused.value.message
    assert count_events(server.store, catalog, server.workdir) == 0


def test_the_pixel_judges_the_values_that_read_beside_those_that_do_not(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """The rules about values that read are said beside the wrong ones; a rule that may
    hang on a wrong value is not (the type's, a value not given)."""
    event = {"eventType": "detail-page-view", "visitorId": "v" * 200, "eventTime": "yesterday",
             "productDetails": [{"product": {"id": "tent"}}], "userInfo": {"userId": 5}}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": json.dumps(event)},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["user_event.event_time", "user_event.user_info.user_id",
                                        "user_event.visitor_id"])
    assert "at most 128 characters" in refused.value.message, refused.value.message
    # its type unread, and product_details a text: neither its rules nor theirs are judged
    wrong_type = {"eventType": 7, "visitorId": "v", "productDetails": "tent", "cartId": "c"}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog,
                                           "user_event": json.dumps(wrong_type)},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["user_event.event_type", "user_event.product_details"])
    # a rule about a value not given may hang on the wrong one: a search's categories
    search = {"eventType": "search", "visitorId": "v" * 200, "pageCategories": 5,
              "sessionId": 6}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": json.dumps(search)},
                                  timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["user_event.page_categories[0]", "user_event.session_id",
                                        "user_event.visitor_id"])
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_wrong_event_time_beside_ets_is_named_as_the_event_gave_it(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """The event's time is `ets` when it gives none: a rule about that time names ets,
    but an eventTime of the wrong type is the event's own (it was told as `ets: as the
    event's time, not a valid UserEvent in JSON: ...`)."""
    event = json.dumps({"eventType": "home-page-view", "visitorId": "v", "eventTime": 5})
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": event,
                                           "ets": 1716199200000}, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["user_event.event_time"])
    assert count_events(server.store, catalog, server.workdir) == 0


def bad_request(answer: requests.Response) -> list[tuple[str, str]]:
    """(field, description) of each violation of a REST refusal, in its order; its
    message names each."""
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    [bad] = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    said = [(v["field"], v["description"]) for v in bad["fieldViolations"]]
    assert all(f"{field}: {why}" in error["message"] for field, why in said), error["message"]
    return said


def grpc_violations(error: exceptions.GoogleAPICallError) -> list[tuple[str, str]]:
    [bad] = [d for d in error.details if isinstance(d, error_details_pb2.BadRequest)]
    return [(v.field, v.description) for v in bad.field_violations]


def test_a_rest_write_says_the_rules_about_what_read_beside_the_wrong_values(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """A REST body's values of the wrong type are listed first, then what the rules say
    of the values that did read: what they say of the same event sent over gRPC
    without the wrong values (a message cannot hold them). A rule that may hang on a
    wrong value waits (the type's, a value not given). (The gateway refused the body
    naming its wrong values alone, before the rules ran.)"""
    right = {"eventType": "detail-page-view", "visitorId": "v" * 200,
             "productDetails": [{"product": {"id": "tent"}}], "sessionId": "s" * 200}
    body = {**right, "eventTime": "yesterday", "userInfo": {"userId": 5},
            "experimentIds": ["a", 5, {}]}
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.write_user_event(request={"parent": catalog, "user_event": retail_v2.UserEvent(
            event_type="detail-page-view", visitor_id="v" * 200, session_id="s" * 200,
            product_details=[{"product": {"id": "tent"}}])}, timeout=RPC_DEADLINE)
    rules = grpc_violations(refused.value)
    assert [field for field, _ in rules] == ["user_event.visitor_id", "user_event.session_id"]
    for version in ("v2", "v2beta"):
        said = bad_request(requests.post(
            f"http://{server.http_address}/{version}/{catalog}/userEvents:write", json=body,
            timeout=RPC_DEADLINE))
        assert [field for field, _ in said[:4]] == [
            "user_event.event_time", "user_event.user_info.user_id",
            "user_event.experiment_ids[1]", "user_event.experiment_ids[2]"], (version, said)
        assert said[4:] == rules, (version, said)
    # its type wrong: most rules hang on it, none is said
    said = bad_request(requests.post(
        f"http://{server.http_address}/v2/{catalog}/userEvents:write",
        json={**right, "eventType": 7}, timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == ["user_event.event_type"], said
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_rest_collect_says_the_rules_about_what_read_beside_the_wrong_values(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    event = json.dumps({"eventType": "home-page-view", "visitorId": "v" * 200})
    with pytest.raises(exceptions.InvalidArgument) as refused:
        retail.collect_user_event(request={"parent": catalog, "user_event": event},
                                  timeout=RPC_DEADLINE)
    rules = grpc_violations(refused.value)
    assert [field for field, _ in rules] == ["user_event.visitor_id"], rules
    url = f"http://{server.http_address}/v2/{catalog}/userEvents:collect"
    said = bad_request(requests.post(url, json={"userEvent": event, "ets": "soon"},
                                     timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == ["ets", "user_event.visitor_id"], said
    assert said[1:] == rules, said
    # the event given as an object, not its text: that, and not that none was given
    said = bad_request(requests.post(url, json={"userEvent": {"eventType": "home-page-view"},
                                                "uri": "u" * 6_000}, timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == ["user_event", "uri"], said
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_rest_collect_says_no_rule_of_the_event_a_wrong_raw_json_would_replace(
        server: ServerProcess, catalog: str) -> None:
    """A raw_json that read would be the event, user_event then ignored: beside a
    raw_json of the wrong type, the rules about user_event's event (and its JSON) wait;
    the request's own are said. (Its visitor_id was said, a rule about an event the
    sender would not have stored.)"""
    url = f"http://{server.http_address}/v2/{catalog}/userEvents:collect"
    ruled_out = json.dumps({"eventType": "home-page-view", "visitorId": "v" * 200})
    for user_event in (ruled_out, '{"eventType": 7}', "{not json"):
        said = bad_request(requests.post(url, json={"rawJson": 5, "userEvent": user_event,
                                                    "uri": "u" * 6_000}, timeout=RPC_DEADLINE))
        assert [field for field, _ in said] == ["raw_json", "uri"], (user_event, said)
    # with no wrong value beside it, the event's rules are said
    said = bad_request(requests.post(url, json={"userEvent": ruled_out, "uri": "u" * 6_000},
                                     timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == ["uri", "user_event.visitor_id"], said
    assert count_events(server.store, catalog, server.workdir) == 0


def test_a_rest_client_event_says_the_rules_about_what_read_beside_the_wrong_values(
        server: ServerProcess, tenant: str) -> None:
    elsewhere = "projects/footfall-interop/tenants/elsewhere/jobs/j-1"
    event: dict[str, Any] = {"requestId": "r" * 300, "eventId": "e-1", "createTime": 1733300000,
                             "jobEvent": {"type": "VIEW", "jobs": [elsewhere]}}
    said = bad_request(requests.post(f"http://{server.http_address}/v4/{tenant}/clientEvents",
                                     json=event, timeout=RPC_DEADLINE))
    # (create_time's `is required` waits for its value)
    assert [field for field, _ in said] == [
        "client_event.create_time", "client_event.request_id", "client_event.job_event.jobs[0]"
    ], said
    assert "is not in the parent tenant" in said[2][1], said
    said = bad_request(requests.post(f"http://{server.http_address}/v4beta1/{tenant}/clientEvents",
                                     json={"clientEvent": event}, timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == [
        "client_event.create_time", "client_event.request_id", "client_event.job_event.jobs[0]"
    ], said
    assert count_client_events(server.store, tenant, server.workdir) == 0


# An event the rules refuse twice (its visitor_id and session_id too long)
RULED_OUT = {"eventType": "detail-page-view", "visitorId": "v" * 200,
             "eventTime": "2024-05-20T10:00:00Z", "productDetails": [{"product": {"id": "t"}}],
             "sessionId": "s" * 200}
INLINE_EVENT = "input_config.user_event_inline_source.user_events[0]."


def inline_failure(retail: retail_v2.UserEventServiceClient, catalog: str) -> str:
    """The failure of RULED_OUT imported inline over gRPC (a message cannot hold a value
    of the wrong type): what the rules say of it."""
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"user_event_inline_source": {"user_events": [
            retail_v2.UserEvent(event_type="detail-page-view", visitor_id="v" * 200,
                                event_time={"seconds": 1716199200}, session_id="s" * 200,
                                product_details=[{"product": {"id": "t"}}])]}}},
        timeout=RPC_DEADLINE)
    [inline] = [s.message for s in finish(operation).error_samples]
    assert inline.startswith(f"{INLINE_EVENT}visitor_id: "), inline
    return inline


def test_an_import_line_says_the_rules_about_what_read_beside_the_wrong_values(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    """A line's entry (its error sample) lists its wrong values, then what the rules
    say of the values that did read: what they say of the same event imported inline
    over gRPC without them. A rule that may hang on a wrong value waits. (A line
    with wrong values was told of them alone.)"""
    rules = inline_failure(retail, catalog).replace(INLINE_EVENT, "")  # (a line's paths
    # start at its event)
    lines = put_gcs(server.gcs_root, f"{gcs_folder}/events.json", [
        json.dumps({**RULED_OUT, "userInfo": {"userId": 5}, "experimentIds": ["a", 5, {}]}),
        json.dumps({**RULED_OUT, "eventType": 7}),
        json.dumps({"eventType": "home-page-view", "visitorId": "v", "eventTime": "then"})])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [lines]}},
        "errors_config": {"gcs_prefix": f"{gcs_folder}/errors"}}, timeout=RPC_DEADLINE)
    samples = [s.message for s in finish(operation).error_samples]
    op_id = operation.operation.name.rsplit("/", 1)[-1]
    written = gcs_path(server.gcs_root, f"{gcs_folder}/errors/{op_id}-errors.json"
                       ).read_text().splitlines()
    assert [json.loads(line)["message"] for line in written] == samples
    first, second, third = samples
    wrong = ["user_info.user_id", "experiment_ids[1]", "experiment_ids[2]"]
    assert first.startswith(f"{lines} line 1: not a UserEvent: "), first
    said = first.removeprefix(f"{lines} line 1: not a UserEvent: ")
    assert [part.partition(": ")[0] for part in said.split("; ")][:3] == wrong, said
    assert said.endswith(f"; {rules}"), (said, rules)
    # its type wrong: none of its rules; its time wrong: not `is required`
    assert second.partition(": not a UserEvent: ")[2].startswith("event_type: "), second
    assert "; " not in second, second
    assert third.partition(": not a UserEvent: ")[2].startswith("event_time: "), third
    assert "; " not in third and "is required" not in third, third
    assert count_events(server.store, catalog, server.workdir) == 0


def test_an_inline_import_over_rest_says_the_rules_about_what_read_beside_the_wrong_values(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """Refused for its events' wrong values, an inline import over REST is told of what
    the rules say of their values that did read too (what its operation would have
    reported), but for an event whose type is wrong."""
    inline = inline_failure(retail, catalog)
    said = bad_request(requests.post(
        f"http://{server.http_address}/v2/{catalog}/userEvents:import", json={"inputConfig": {
            "userEventInlineSource": {"userEvents": [{**RULED_OUT, "userInfo": {"userId": 5}},
                                                     {**RULED_OUT, "eventType": 7}]}}},
        timeout=RPC_DEADLINE))
    assert [field for field, _ in said] == [
        f"{INLINE_EVENT}user_info.user_id", INLINE_EVENT.replace("[0]", "[1]") + "event_type",
        f"{INLINE_EVENT}visitor_id", f"{INLINE_EVENT}session_id"], said
    assert "; ".join(f"{field}: {why}" for field, why in said[2:]) == inline, (said, inline)
    assert count_events(server.store, catalog, server.workdir) == 0


def test_an_import_over_rest_says_the_rules_about_its_sources_beside_the_wrong_values(
        server: ServerProcess, catalog: str) -> None:
    """Refused for a wrong value, an import is told what the rules say of its sources
    too, as when it is called (a schema it does not read); the files its URIs name are
    looked for once its values read. (It was told its wrong values alone.)"""
    source = {"gcsSource": {"inputUris": ["gs://nowhere/e.json"], "dataSchema": "product"}}
    for version in ("v2", "v2beta"):
        url = f"http://{server.http_address}/{version}/{catalog}/userEvents:import"
        said = bad_request(requests.post(url, json={"inputConfig": source,
                                                    "errorsConfig": {"gcsPrefix": 5}},
                                         timeout=RPC_DEADLINE))
        assert [field for field, _ in said] == [
            "errors_config.gcs_prefix", "input_config.gcs_source.data_schema"], (version, said)
        assert "unsupported schema 'product'" in said[1][1], said
        said = bad_request(requests.post(url, json={"inputConfig": source},
                                         timeout=RPC_DEADLINE))
        assert [field for field, _ in said] == [
            "input_config.gcs_source.data_schema", "input_config.gcs_source.input_uris[0]"
        ], (version, said)
