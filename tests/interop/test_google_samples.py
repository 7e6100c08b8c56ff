"""What Google's published samples send, sent as they send it, against a `footfall
serve` subprocess: each test names the sample it stands for and repeats its calls,
with data of the same shape and content of our own.

- Cloud Talent's CreateClientEvent samples (job_search_create_client_event): the
  Python, Go and C# ones call the v4beta1 surface of EventService (v4beta1 answered
  UNIMPLEMENTED), with a create_time a few seconds after the epoch (the Python one
  `{"seconds": 0}`, an empty Timestamp); the Java one calls v4. The Go one names
  the project alone as its parent (v4beta1's default tenant) and jobs of it,
  `projects/P/jobs/J`.
- Retail's interactive tutorials (events/: write, purge, rejoin, inline and Cloud
  Storage imports, and their resources/user_events*.json files).
- The same tutorials in C# (dotnet-docs-samples retail/interactive-tutorial): their
  inline import sends three identical events (one visitor, one second) and its test
  expects 3 successes and no failure at every run; their purge test expects the one
  event its write stored to be purged.
- Rows of the BigQuery table the tutorials load their events into (its
  events_schema.json), as `bq extract` writes them: what README's "export the table
  as newline-delimited JSON, then import the files" turns into an import.
- The Python and Java CreateClientEvent samples name one job twice in `jobs`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2, talent_v4, talent_v4beta1
from google.protobuf import timestamp_pb2

from .support import (
    RPC_DEADLINE,
    ServerProcess,
    assert_names_fields,
    count_events,
    finish,
    list_events,
    put_gcs,
    wait_until,
)

VIEW = talent_v4beta1.JobEvent.JobEventType.VIEW
UNJOINED = retail_v2.RejoinUserEventsRequest.UserEventRejoinScope.UNJOINED_EVENTS


def beta_event(tenant: str, event_id: str, seconds: int, **job_event: Any
               ) -> talent_v4beta1.ClientEvent:
    """A client event as the samples build one: the request id of a search, their
    own event id, a create time in seconds, a VIEW of two jobs of the tenant."""
    return talent_v4beta1.ClientEvent(
        request_id="req-from-search-response-metadata", event_id=event_id,
        create_time=timestamp_pb2.Timestamp(seconds=seconds),
        job_event=talent_v4beta1.JobEvent(
            type_=VIEW, jobs=[f"{tenant}/jobs/nurse-night", f"{tenant}/jobs/nurse-day"],
            **job_event))


@pytest.mark.parametrize("seconds", [0, 1, 3],
                         ids=["python-sample", "go-and-csharp-samples", "java-v4-sample-time"])
def test_the_v4beta1_samples_create_their_event(talent_beta: talent_v4beta1.EventServiceClient,
                                                 tenant: str, seconds: int) -> None:
    sent = beta_event(tenant, f"sample-event-{seconds}", seconds)
    created = talent_beta.create_client_event(parent=tenant, client_event=sent,
                                              timeout=RPC_DEADLINE)
    assert created == sent
    # the samples' retry of the same event is answered the stored one
    assert talent_beta.create_client_event(parent=tenant, client_event=sent,
                                           timeout=RPC_DEADLINE) == sent


def test_a_v4beta1_event_is_the_v4_event_of_the_same_id(
        talent_beta: talent_v4beta1.EventServiceClient, talent: talent_v4.EventServiceClient,
        tenant: str) -> None:
    """One row whichever version writes it; v4beta1's JobEvent.profile (which v4 has
    not) is kept and answered back, and makes another event than v4's."""
    plain = beta_event(tenant, "same-row", 1_716_213_787)
    talent_beta.create_client_event(parent=tenant, client_event=plain, timeout=RPC_DEADLINE)
    as_v4 = talent_v4.ClientEvent.deserialize(talent_v4beta1.ClientEvent.serialize(plain))
    assert talent.create_client_event(parent=tenant, client_event=as_v4,
                                      timeout=RPC_DEADLINE) == as_v4
    profiled = beta_event(tenant, "with-profile", 1_716_213_788,
                          profile=f"{tenant}/profiles/candidate-7")
    created = talent_beta.create_client_event(parent=tenant, client_event=profiled,
                                              timeout=RPC_DEADLINE)
    assert created.job_event.profile == f"{tenant}/profiles/candidate-7"
    without = talent_v4.ClientEvent.deserialize(talent_v4beta1.ClientEvent.serialize(
        beta_event(tenant, "with-profile", 1_716_213_788)))
    with pytest.raises(exceptions.AlreadyExists, match="with-profile"):
        talent.create_client_event(parent=tenant, client_event=without, timeout=RPC_DEADLINE)


def test_v4beta1_refuses_what_v4_refuses(talent_beta: talent_v4beta1.EventServiceClient,
                                         tenant: str) -> None:
    bad = talent_v4beta1.ClientEvent(
        event_id="", job_event=talent_v4beta1.JobEvent(
            type_=talent_v4beta1.JobEvent.JobEventType.JOB_EVENT_TYPE_UNSPECIFIED,
            jobs=["projects/another/tenants/t/jobs/j"]))
    with pytest.raises(exceptions.InvalidArgument) as refused:
        talent_beta.create_client_event(parent=tenant, client_event=bad, timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, [
        "client_event.event_id", "client_event.create_time", "client_event.job_event.type",
        "client_event.job_event.jobs[0]"])
    # a job of the default tenant is not a job of a named one
    with pytest.raises(exceptions.InvalidArgument) as elsewhere:
        talent_beta.create_client_event(parent=tenant, client_event=beta_event(
            "projects/footfall-interop", "e", 1), timeout=RPC_DEADLINE)
    assert_names_fields(elsewhere.value, ["client_event.job_event.jobs[0]",
                                          "client_event.job_event.jobs[1]"])


def test_the_go_sample_writes_to_the_projects_default_tenant(
        talent_beta: talent_v4beta1.EventServiceClient, server: ServerProcess,
        request: pytest.FixtureRequest) -> None:
    """Its parent is the project alone, its jobs `projects/P/jobs/J`: kept under the
    project's tenant `default_tenant`, where the console lists them."""
    project = f"projects/{request.node.name.replace('_', '-')}"
    sent = beta_event(project, "go-sample-event", 1_716_213_787)
    assert talent_beta.create_client_event(parent=project, client_event=sent,
                                           timeout=RPC_DEADLINE) == sent
    listed = requests.get(f"http://{server.http_address}/console/v1/{project}/tenants/"
                          "default_tenant/clientEvents", timeout=RPC_DEADLINE)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["clientEvents"]
    assert row["clientEvent"]["jobEvent"]["jobs"] == [f"{project}/jobs/nurse-night",
                                                      f"{project}/jobs/nurse-day"]
    # a job of a named tenant is not one of the default tenant
    with pytest.raises(exceptions.InvalidArgument) as elsewhere:
        talent_beta.create_client_event(parent=project, client_event=beta_event(
            f"{project}/tenants/t", "other", 1), timeout=RPC_DEADLINE)
    # ... and the refusal says what a parent of the project alone names (it spoke of a
    # tenant "default_tenant" the caller never wrote)
    tenant = f"{project}/tenants/default_tenant"
    assert f"job '{project}/tenants/t/jobs/nurse-night' is not in the parent tenant {tenant} " \
           f"(project {project.removeprefix('projects/')}'s default tenant, which a parent " \
           f"of the project alone, '{project}', names: its jobs are {project}/jobs/* or " \
           f"{tenant}/jobs/*; for a job of another tenant, make that tenant the parent)" \
           in elsewhere.value.message, elsewhere.value.message


def test_a_funnel_finds_a_job_of_the_default_tenant_by_either_name(
        talent_beta: talent_v4beta1.EventServiceClient, server: ServerProcess,
        request: pytest.FixtureRequest) -> None:
    """The Go sample's jobs are stored as `projects/P/jobs/J`; the job stats give them
    by the tenant's name (one row a job, whichever name its events give): a funnel
    step of that job, by either name, takes the event (it was refused, and the other
    name matched nothing)."""
    project = f"projects/{request.node.name.replace('_', '-')[:60]}"
    sent = beta_event(project, "go-sample-event", 1_716_213_787)
    talent_beta.create_client_event(parent=project, client_event=sent, timeout=RPC_DEADLINE)
    tenant = f"{project}/tenants/default_tenant"
    stats = requests.get(f"http://{server.http_address}/insights/v1/{tenant}/jobStats",
                         params={"orderBy": "job"}, timeout=RPC_DEADLINE)
    assert stats.status_code == 200, stats.text
    assert [row["job"] for row in stats.json()["jobs"]] == [f"{tenant}/jobs/nurse-day",
                                                            f"{tenant}/jobs/nurse-night"]
    for job in (f"{project}/jobs/nurse-night", f"{tenant}/jobs/nurse-night"):
        answer = requests.post(
            f"http://{server.http_address}/insights/v1/{tenant}:runFunnel",
            json={"steps": [{"eventType": "VIEW", "job": job}]}, timeout=RPC_DEADLINE)
        assert answer.status_code == 200, answer.text
        assert answer.json()["steps"][0].get("entrants") == "1", (job, answer.text)
    # a job of the default tenant of another project is still not this tenant's
    elsewhere = requests.post(
        f"http://{server.http_address}/insights/v1/{tenant}:runFunnel",
        json={"steps": [{"eventType": "VIEW", "job": "projects/other/jobs/nurse-night"}]},
        timeout=RPC_DEADLINE)
    assert elsewhere.status_code == 400, elsewhere.text
    assert "steps[0].job" in elsewhere.text


def test_v4beta1_over_rest_takes_the_whole_request_as_its_body(server: ServerProcess,
                                                               tenant: str) -> None:
    """v4beta1's REST binding has `body: "*"` (v4's binds the event alone)."""
    event = {"requestId": "r-1", "eventId": "rest-beta", "createTime": "2024-05-20T14:03:07Z",
             "jobEvent": {"type": "APPLICATION_START", "jobs": [f"{tenant}/jobs/j1"]}}
    answer = requests.post(f"http://{server.http_address}/v4beta1/{tenant}/clientEvents",
                           json={"clientEvent": event}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200, answer.text
    assert answer.json() == event
    # the binding of a project alone, for its default tenant
    project = f"rest-{tenant.rsplit('/', 1)[1]}"
    of_default = {**event, "jobEvent": {"type": "VIEW", "jobs": [f"projects/{project}/jobs/j"]}}
    answer = requests.post(f"http://{server.http_address}/v4beta1/projects/{project}/clientEvents",
                           json={"clientEvent": of_default}, timeout=RPC_DEADLINE)
    assert answer.status_code == 200, answer.text
    assert answer.json() == of_default


# -- retail: the interactive tutorials (python-docs-samples retail/interactive-tutorials) --

def tutorial_line(event_type: str, visitor: str, **fields: Any) -> str:
    """A line as the tutorials' user_events*.json write them: compact, a numeric
    UTC offset, one product detail as an object rather than a list."""
    return json.dumps({"eventType": event_type, "visitorId": visitor,
                       "eventTime": "2024-05-19T10:27:42+00:00", **fields},
                      separators=(",", ":"))


def test_the_tutorials_user_event_files_import_as_their_tests_expect(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    """import_user_events_gcs.py with errors_config `gs://BUCKET/error`: the valid
    file imports whole (its test expects every event and no failure, the result
    echoing errors_config); the `_some_invalid` one fails on its one line of event
    type "invalid" (which carries a searchQuery) and imports the rest."""
    valid = put_gcs(server.gcs_root, f"{gcs_folder}/user_events.json", [
        tutorial_line("home-page-view", "group1_visitor1"),
        tutorial_line("search", "group1_visitor1", searchQuery="blue denim jacket"),
        tutorial_line("search", "group1_visitor1", searchQuery="wool hiking socks"),
        tutorial_line("detail-page-view", "group1_visitor1",
                      productDetails={"product": {"id": "JACKET-DENIM-01"}, "quantity": 3})])
    some_invalid = put_gcs(server.gcs_root, f"{gcs_folder}/user_events_some_invalid.json", [
        tutorial_line("home-page-view", "group1_visitor2"),
        tutorial_line("invalid", "group1_visitor2", searchQuery="blue denim jacket"),
        tutorial_line("search", "group1_visitor2", searchQuery="wool hiking socks"),
        tutorial_line("detail-page-view", "group1_visitor2",
                      productDetails={"product": {"id": "JACKET-DENIM-01"}, "quantity": 3})])
    errors = f"{gcs_folder}/error"
    outcomes = []
    for uri in (valid, some_invalid):
        operation = retail.import_user_events(request={
            "parent": catalog, "input_config": {"gcs_source": {"input_uris": [uri]}},
            "errors_config": {"gcs_prefix": errors}}, timeout=RPC_DEADLINE)
        assert "/operations/import-user-events" in operation.operation.name
        result = finish(operation)
        assert result.errors_config.gcs_prefix == errors
        outcomes.append((operation.metadata.success_count, operation.metadata.failure_count))
    assert outcomes == [(4, 0), (3, 1)]
    assert count_events(server.store, catalog, server.workdir) == 7


def test_the_write_tutorial_writes_its_event(retail: retail_v2.UserEventServiceClient,
                                             server: ServerProcess, catalog: str) -> None:
    """write_user_event.py: a home-page-view whose event_time is now in whole seconds,
    built field by field; the event written is answered as sent, then purged by the
    filter of setup_cleanup.purge_user_event (no spaces around `=`)."""
    event = retail_v2.UserEvent()
    event.event_type = "home-page-view"
    event.visitor_id = "test_visitor_id"
    event.event_time = timestamp_pb2.Timestamp(seconds=int(time.time()))
    request = retail_v2.WriteUserEventRequest()
    request.user_event = event
    request.parent = catalog
    assert retail.write_user_event(request, timeout=RPC_DEADLINE) == event
    purge = retail.purge_user_events(retail_v2.PurgeUserEventsRequest(
        parent=catalog, filter='visitorId="test_visitor_id"', force=True), timeout=RPC_DEADLINE)
    assert re.fullmatch(f"{catalog}/operations/purge-user-events-.+", purge.operation.name)
    assert finish(purge).purged_events_count == 1
    assert count_events(server.store, catalog, server.workdir) == 0


def test_the_rejoin_tutorial_rejoins_and_purges(retail: retail_v2.UserEventServiceClient,
                                                server: ServerProcess, catalog: str) -> None:
    """rejoin_user_event.py: setup_cleanup.write_user_event writes a detail-page-view of
    a product the catalog does not hold (`test_id`), then the sample asks a rejoin of
    UNJOINED_EVENTS and purges the visitor; its test expects both operations' names
    (`.../operations/rejoin-user-events...`, `.../operations/purge-user-events...`)."""
    detail = retail_v2.ProductDetail()
    detail.product = retail_v2.Product(id="test_id")
    event = retail_v2.UserEvent(event_type="detail-page-view", visitor_id="test_visitor_id",
                                event_time=timestamp_pb2.Timestamp(seconds=int(time.time())),
                                product_details=[detail])
    retail.write_user_event(retail_v2.WriteUserEventRequest(parent=catalog, user_event=event),
                            timeout=RPC_DEADLINE)
    rejoin = retail.rejoin_user_events(retail_v2.RejoinUserEventsRequest(
        parent=catalog, user_event_rejoin_scope=UNJOINED), timeout=RPC_DEADLINE)
    assert re.fullmatch(f"{catalog}/operations/rejoin-user-events-.+", rejoin.operation.name)
    # the product is still unknown: the event stays unjoined, and is not counted
    assert finish(rejoin).rejoined_user_events_count == 0
    assert count_events(server.store, catalog, server.workdir, "joined = false") == 1
    purge = retail.purge_user_events(retail_v2.PurgeUserEventsRequest(
        parent=catalog, filter='visitorId="test_visitor_id"', force=True), timeout=RPC_DEADLINE)
    assert finish(purge).purged_events_count == 1


def test_the_inline_import_tutorial_imports_its_three_events(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """import_user_events_inline.py: three home-page-views of random visitors at the
    same second, polled with done() until done; its test expects an
    `.../operations/import-user-events...` name, 3 successes and 0 failures."""
    now = timestamp_pb2.Timestamp(seconds=int(time.time()))
    events = [retail_v2.UserEvent(event_type="home-page-view", visitor_id=f"qwzkevent_{n}",
                                  event_time=now) for n in range(3)]
    request = retail_v2.ImportUserEventsRequest(
        parent=catalog, input_config=retail_v2.UserEventInputConfig(
            user_event_inline_source=retail_v2.UserEventInlineSource(user_events=events)))
    operation = retail.import_user_events(request, timeout=RPC_DEADLINE)
    assert re.fullmatch(f"{catalog}/operations/import-user-events-.+", operation.operation.name)
    wait_until(operation.done, "the import's done()")
    result = operation.result()
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (3, 0)
    assert (result.import_summary.joined_events_count,
            result.import_summary.unjoined_events_count) == (3, 0)
    assert count_events(server.store, catalog, server.workdir) == 3


@pytest.mark.parametrize("call", ["write", "import", "rejoin"])
def test_the_tutorials_invalid_catalog_name_is_refused_naming_parent(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, gcs_folder: str,
        call: str) -> None:
    """The tutorials' "TO CHECK THE ERROR HANDLING PASTE THE INVALID CATALOG NAME HERE:
    default_catalog = "invalid_catalog_name"": INVALID_ARGUMENT naming `parent` alone
    (the import's file is there, as the tutorial uploads it first)."""
    parent = "invalid_catalog_name"
    events = put_gcs(server.gcs_root, f"{gcs_folder}/user_events.json",
                     [tutorial_line("home-page-view", "group1_visitor1")])
    with pytest.raises(exceptions.InvalidArgument) as refused:
        if call == "write":
            retail.write_user_event(retail_v2.WriteUserEventRequest(
                parent=parent, user_event=retail_v2.UserEvent(
                    event_type="home-page-view", visitor_id="test_visitor_id")),
                timeout=RPC_DEADLINE)
        elif call == "import":
            retail.import_user_events(retail_v2.ImportUserEventsRequest(
                parent=parent, input_config=retail_v2.UserEventInputConfig(
                    gcs_source=retail_v2.GcsSource(input_uris=[events])),
                errors_config=retail_v2.ImportErrorsConfig(gcs_prefix=f"{gcs_folder}/error")),
                timeout=RPC_DEADLINE)
        else:
            retail.rejoin_user_events(retail_v2.RejoinUserEventsRequest(
                parent=parent, user_event_rejoin_scope=UNJOINED), timeout=RPC_DEADLINE)
    assert_names_fields(refused.value, ["parent"])


# -- the C# tutorials (dotnet-docs-samples retail/interactive-tutorial) --

def test_the_csharp_inline_import_counts_its_identical_events_at_every_run(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """ImportUserEventsInlineSourceSample: three home-page-views that are one event
    (the same visitor, the same whole second), polled until completed; its test
    expects SuccessCount 3 and FailureCount 0, and runs again on the same catalog."""
    now = timestamp_pb2.Timestamp(seconds=int(time.time()))
    same = [retail_v2.UserEvent(event_type="home-page-view", visitor_id="test_visitor_id",
                                event_time=now) for _ in range(3)]
    request = retail_v2.ImportUserEventsRequest(
        parent=catalog, input_config=retail_v2.UserEventInputConfig(
            user_event_inline_source=retail_v2.UserEventInlineSource(user_events=same)))
    for _ in range(2):
        operation = retail.import_user_events(request, timeout=RPC_DEADLINE)
        assert not finish(operation).error_samples
        assert (operation.metadata.success_count, operation.metadata.failure_count) == (3, 0)
    assert count_events(server.store, catalog, server.workdir) == 1


def test_the_csharp_purge_sample_purges_the_event_its_write_stored(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str) -> None:
    """PurgeUserEventSample: a detail-page-view of `test_id` (no product of the
    catalog) with a quantity, written, then `visitorId="test_visitor_id"` purged with
    force; its test expects PurgedEventsCount 1."""
    event = retail_v2.UserEvent(
        event_type="detail-page-view", visitor_id="test_visitor_id",
        event_time=timestamp_pb2.Timestamp(seconds=int(time.time())),
        product_details=[retail_v2.ProductDetail(product=retail_v2.Product(id="test_id"),
                                                 quantity=3)])
    assert retail.write_user_event(retail_v2.WriteUserEventRequest(
        parent=catalog, user_event=event), timeout=RPC_DEADLINE) == event
    purge = retail.purge_user_events(retail_v2.PurgeUserEventsRequest(
        parent=catalog, filter='visitorId="test_visitor_id"', force=True), timeout=RPC_DEADLINE)
    assert finish(purge).purged_events_count == 1
    assert count_events(server.store, catalog, server.workdir) == 0


def bigquery_row(event_type: str, visitor: str, **columns: Any) -> str:
    """A row of the tutorials' events table (events_schema.json: eventType, visitorId
    and eventTime as STRING, searchQuery, cartId, pageCategories, productDetails of
    {product {id}, quantity INTEGER}, purchaseTransaction {revenue FLOAT,
    currencyCode}) as `bq extract --destination_format NEWLINE_DELIMITED_JSON` writes
    it: every repeated column, an empty one as [], integers in quotes (BigQuery's JSON
    keeps INT64 as text), a NULL column left out."""
    row: dict[str, Any] = {"eventType": event_type, "visitorId": visitor,
                           "eventTime": "2024-05-19T10:27:42+00:00", "pageCategories": [],
                           "productDetails": []}
    row.update(columns)
    return json.dumps(row, separators=(",", ":"))


def test_rows_of_the_tutorials_bigquery_table_import_once_extracted(
        retail: retail_v2.UserEventServiceClient, server: ServerProcess, catalog: str,
        gcs_folder: str) -> None:
    """README sends a BigQuery import to `bq extract` and a Cloud Storage import: the
    rows of the table Google's tutorials load their events into import whole, a row
    written with its NULL columns as null too; an event type Google does not know, with
    a search query (the tutorials' invalid line), fails alone, naming the query."""
    detail = {"product": {"id": "JACKET-DENIM-01"}, "quantity": "3"}
    rows = put_gcs(server.gcs_root, f"{gcs_folder}/events-000000000000.json", [
        bigquery_row("home-page-view", "bq-visitor-1"),
        bigquery_row("search", "bq-visitor-1", searchQuery="wool hiking socks",
                     pageCategories=["Apparel > Socks"]),
        bigquery_row("detail-page-view", "bq-visitor-1", productDetails=[detail]),
        bigquery_row("add-to-cart", "bq-visitor-1", cartId="cart-7", productDetails=[detail]),
        bigquery_row("purchase-complete", "bq-visitor-1", cartId="cart-7",
                     productDetails=[detail],
                     purchaseTransaction={"revenue": 89.97, "currencyCode": "EUR"}),
        bigquery_row("home-page-view", "bq-visitor-2", searchQuery=None, cartId=None,
                     purchaseTransaction=None),
        bigquery_row("invalid", "bq-visitor-2", searchQuery="blue denim jacket"),
    ])
    operation = retail.import_user_events(request={
        "parent": catalog, "input_config": {"gcs_source": {"input_uris": [rows]}}},
        timeout=RPC_DEADLINE)
    [sample] = finish(operation).error_samples
    assert (operation.metadata.success_count, operation.metadata.failure_count) == (6, 1)
    assert "line 7" in sample.message and "search_query" in sample.message, sample.message
    stored = {(e["eventType"], e["visitorId"]): e
              for e in list_events(server.store, catalog, server.workdir)}
    assert len(stored) == 6
    bought = stored[("purchase-complete", "bq-visitor-1")]
    assert bought["productDetails"] == [detail | {"quantity": 3}]
    assert bought["purchaseTransaction"] == {"revenue": 89.97, "currencyCode": "EUR"}
    assert "pageCategories" not in stored[("home-page-view", "bq-visitor-1")]


def test_the_client_event_samples_name_one_job_twice(
        talent_beta: talent_v4beta1.EventServiceClient, talent: talent_v4.EventServiceClient,
        tenant: str) -> None:
    """job_search_create_client_event.py and JobSearchCreateClientEvent.java give
    `jobs` two elements of one value: kept as sent, and a retry answered the same."""
    job = f"{tenant}/jobs/nurse-night"
    sent = talent_v4beta1.ClientEvent(
        request_id="req-from-search-response-metadata", event_id="one-job-twice",
        create_time=timestamp_pb2.Timestamp(seconds=3),
        job_event=talent_v4beta1.JobEvent(type_=VIEW, jobs=[job, job]))
    for _ in range(2):
        assert talent_beta.create_client_event(parent=tenant, client_event=sent,
                                               timeout=RPC_DEADLINE) == sent
    as_v4 = talent_v4.ClientEvent.deserialize(talent_v4beta1.ClientEvent.serialize(sent))
    assert talent.create_client_event(parent=tenant, client_event=as_v4,
                                      timeout=RPC_DEADLINE) == as_v4
