// A C++ client generated at test time from Footfall's protos/ (Debian's protoc and
// grpc_cpp_plugin). Run by test_clients.py as `client ADDRESS CATALOG TENANT`; it prints
// what the server answered as key=value lines and leaves the judging to the test.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include "footfall/retail/v2/user_event_service.grpc.pb.h"
#include "footfall/talent/v4/event_service.grpc.pb.h"
#include "google/longrunning/operations.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace retail = google::cloud::retail::v2;
namespace talent = google::cloud::talent::v4;
using google::longrunning::Operation;
using google::protobuf::util::TimeUtil;

namespace {

constexpr std::chrono::seconds kCallDeadline{10};
constexpr std::chrono::seconds kOperationDeadline{30};
constexpr std::chrono::milliseconds kPollInterval{50};

template <typename T>
void Report(const std::string& key, const T& value) {
  std::cout << key << "=" << value << "\n";
}

// A timestamp as seconds.nanoseconds, exactly, the same in every client.
std::string Stamp(const google::protobuf::Timestamp& at) {
  char nanos[16];
  std::snprintf(nanos, sizeof nanos, ".%09d", at.nanos());
  return std::to_string(at.seconds()) + nanos;
}

[[noreturn]] void Fail(const std::string& why) {
  std::cerr << why << std::endl;
  std::exit(1);
}

void Check(const std::string& what, const grpc::Status& status) {
  if (!status.ok()) Fail(what + ": " + std::to_string(status.error_code()) + " " +
                         status.error_message());
}

// A fresh context per call (a context serves one call), with the call deadline.
std::unique_ptr<grpc::ClientContext> Call() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  return context;
}

void Write(retail::UserEventService::Stub& events, const std::string& catalog) {
  retail::WriteUserEventRequest request;
  request.set_parent(catalog);
  retail::UserEvent* event = request.mutable_user_event();
  event->set_event_type("home-page-view");
  event->set_visitor_id("cpp-visitor");
  (*event->mutable_attributes())["client"].add_text("cpp");
  retail::UserEvent written;
  Check("WriteUserEvent", events.WriteUserEvent(Call().get(), request, &written));
  Report("write.visitor_id", written.visitor_id());
  Report("write.attribute", written.attributes().at("client").text(0));
  Report("write.event_time", Stamp(written.event_time()));
}

// Sends a visitor id one character too long; reports the status and the
// google.rpc.BadRequest inside the google.rpc.Status of the trailers.
void Refuse(retail::UserEventService::Stub& events, const std::string& catalog) {
  retail::WriteUserEventRequest request;
  request.set_parent(catalog);
  request.mutable_user_event()->set_event_type("home-page-view");
  request.mutable_user_event()->set_visitor_id(std::string(129, 'v'));
  retail::UserEvent written;
  grpc::Status refused = events.WriteUserEvent(Call().get(), request, &written);
  Report("refused.code", refused.error_code());
  Report("refused.message", refused.error_message());
  google::rpc::Status details;
  if (!details.ParseFromString(refused.error_details())) Fail("unreadable error details");
  for (const auto& detail : details.details()) {
    google::rpc::BadRequest bad;
    if (!detail.UnpackTo(&bad)) continue;
    for (const auto& violation : bad.field_violations()) {
      Report("refused.violation", violation.field() + ": " + violation.description());
    }
  }
}

// Imports three good events and one bad, then polls GetOperation until done.
void ImportInline(retail::UserEventService::Stub& events,
                  google::longrunning::Operations::Stub& operations, const std::string& catalog) {
  retail::ImportUserEventsRequest request;
  request.set_parent(catalog);
  auto* batch = request.mutable_input_config()->mutable_user_event_inline_source();
  for (int i = 0; i < 3; ++i) {
    retail::UserEvent* event = batch->add_user_events();
    event->set_event_type("home-page-view");
    event->set_visitor_id("cpp-import-" + std::to_string(i));
    *event->mutable_event_time() = TimeUtil::SecondsToTimestamp(1716213600 + i);
  }
  // No event_time (an import needs one) and a detail view without products.
  retail::UserEvent* bad = batch->add_user_events();
  bad->set_event_type("detail-page-view");
  bad->set_visitor_id("cpp-import-bad");

  Operation started;
  Check("ImportUserEvents", events.ImportUserEvents(Call().get(), request, &started));
  Report("import.operation", started.name());

  const auto end = std::chrono::steady_clock::now() + kOperationDeadline;
  google::longrunning::GetOperationRequest get;
  get.set_name(started.name());
  Operation operation;
  int polls = 0;
  while (true) {
    Check("GetOperation", operations.GetOperation(Call().get(), get, &operation));
    ++polls;
    if (operation.done()) break;
    if (std::chrono::steady_clock::now() > end) Fail(started.name() + " not done in time");
    std::this_thread::sleep_for(kPollInterval);
  }
  Report("import.polls", polls);

  retail::ImportMetadata metadata;
  if (!operation.metadata().UnpackTo(&metadata)) Fail("metadata is not ImportMetadata");
  Report("import.success_count", metadata.success_count());
  Report("import.failure_count", metadata.failure_count());
  if (operation.has_error()) Fail("import failed: " + operation.error().message());
  retail::ImportUserEventsResponse response;
  if (!operation.response().UnpackTo(&response)) Fail("response is not ImportUserEventsResponse");
  for (const auto& sample : response.error_samples()) {
    Report("import.error_sample", std::to_string(sample.code()) + " " + sample.message());
  }
  Report("import.joined_events_count", response.import_summary().joined_events_count());
  Report("import.unjoined_events_count", response.import_summary().unjoined_events_count());
}

// Creates a job view, retries it unchanged (the stored event comes back), then reuses
// its id for another event (ALREADY_EXISTS).
void CreateClientEvent(talent::EventService::Stub& events, const std::string& tenant) {
  talent::CreateClientEventRequest request;
  request.set_parent(tenant);
  talent::ClientEvent* event = request.mutable_client_event();
  event->set_request_id("cpp-search-1");
  event->set_event_id("cpp-event");
  *event->mutable_create_time() = TimeUtil::MillisecondsToTimestamp(1716213787250);
  event->mutable_job_event()->set_type(talent::JobEvent::VIEW);
  event->mutable_job_event()->add_jobs(tenant + "/jobs/data-engineer");
  event->mutable_job_event()->add_jobs(tenant + "/jobs/sre");
  event->set_event_notes("from the C++ client");

  talent::ClientEvent created;
  Check("CreateClientEvent", events.CreateClientEvent(Call().get(), request, &created));
  Report("talent.event_id", created.event_id());
  Report("talent.type", talent::JobEvent::JobEventType_Name(created.job_event().type()));
  Report("talent.jobs", created.job_event().jobs(0) + "," + created.job_event().jobs(1));
  Report("talent.create_time", Stamp(created.create_time()));

  talent::ClientEvent again;
  Check("CreateClientEvent (retry)", events.CreateClientEvent(Call().get(), request, &again));
  Report("talent.retry_equal",
         google::protobuf::util::MessageDifferencer::Equals(again, created) ? "true" : "false");

  request.mutable_client_event()->set_event_notes("another note");
  talent::ClientEvent ignored;
  Report("talent.reused_id.code",
         events.CreateClientEvent(Call().get(), request, &ignored).error_code());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) Fail("usage: client ADDRESS CATALOG TENANT");
  const std::string address = argv[1], catalog = argv[2], tenant = argv[3];
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + kCallDeadline)) {
    Fail("no connection to " + address);
  }
  auto events = retail::UserEventService::NewStub(channel);
  auto operations = google::longrunning::Operations::NewStub(channel);
  Write(*events, catalog);
  Refuse(*events, catalog);
  ImportInline(*events, *operations, catalog);
  CreateClientEvent(*talent::EventService::NewStub(channel), tenant);
  return 0;
}
