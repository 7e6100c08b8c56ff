// A C++ client of Footfall's own contracts (footfall.console.v1, footfall.insights.v1),
// generated at test time from protos/ as client.cc is: what an integration test of a C++
// team does. It writes events with one key, then reads through the console with others
// whether each arrived or was refused (with which field), watches a catalog and cancels
// the watch, and resets the catalog. Run by test_console_clients.py as
// `console ADDRESS CATALOG` with the keys in FOOTFALL_WRITER_KEY, FOOTFALL_READER_KEY and
// FOOTFALL_ADMIN_KEY; it prints what it was answered as key=value lines.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "footfall/console/v1/console.grpc.pb.h"
#include "footfall/insights/v1/insights.grpc.pb.h"
#include "footfall/retail/v2/user_event_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace console = footfall::console::v1;
namespace insights = footfall::insights::v1;
namespace retail = google::cloud::retail::v2;

namespace {

constexpr std::chrono::seconds kCallDeadline{10};
constexpr std::chrono::seconds kWatchDeadline{20};

template <typename T>
void Report(const std::string& key, const T& value) {
  std::cout << key << "=" << value << "\n";
}

[[noreturn]] void Fail(const std::string& why) {
  std::cerr << why << std::endl;
  std::exit(1);
}

void Check(const std::string& what, const grpc::Status& status) {
  if (!status.ok()) Fail(what + ": " + std::to_string(status.error_code()) + " " +
                         status.error_message());
}

std::string Key(const char* role) {
  const char* key = std::getenv(role);
  if (key == nullptr) Fail(std::string(role) + " is not set");
  return key;
}

// A fresh context per call (a context serves one call), with its deadline and its key
// (none when empty).
std::unique_ptr<grpc::ClientContext> Call(const std::string& key,
                                          std::chrono::seconds deadline = kCallDeadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  if (!key.empty()) context->AddMetadata("x-goog-api-key", key);
  return context;
}

void Write(retail::UserEventService::Stub& events, const std::string& key,
           const std::string& catalog, const std::string& visitor,
           const std::string& event_type) {
  retail::WriteUserEventRequest request;
  request.set_parent(catalog);
  request.mutable_user_event()->set_event_type(event_type);
  request.mutable_user_event()->set_visitor_id(visitor);
  retail::UserEvent written;
  Report("write." + visitor,
         events.WriteUserEvent(Call(key).get(), request, &written).error_code());
}

// A refusal's code, message and what a client can act on: the fields of a
// google.rpc.BadRequest, the reason of a google.rpc.ErrorInfo (both inside the
// google.rpc.Status of the trailers).
void Refused(const std::string& key, const grpc::Status& status) {
  Report(key + ".code", status.error_code());
  if (status.ok()) return;
  Report(key + ".message", status.error_message());
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) Fail("unreadable error details");
  for (const auto& detail : details.details()) {
    google::rpc::BadRequest bad;
    google::rpc::ErrorInfo info;
    if (detail.UnpackTo(&bad)) {
      for (const auto& violation : bad.field_violations()) Report(key + ".field", violation.field());
    } else if (detail.UnpackTo(&info)) {
      Report(key + ".reason", info.reason());
    }
  }
}

// The watch opens with no after_id (only what is stored from now on); its headers say it
// is open, so the event written next is among those it sends. Then the client goes.
void Watch(console::ConsoleService::Stub& reads, retail::UserEventService::Stub& events,
           const std::string& reader, const std::string& writer, const std::string& catalog) {
  console::WatchUserEventsRequest request;
  request.set_parent(catalog);
  request.set_filter("visitorId = \"cpp-watched\"");
  auto context = Call(reader, kWatchDeadline);
  auto stream = reads.WatchUserEvents(context.get(), request);
  stream->WaitForInitialMetadata();
  Write(events, writer, catalog, "cpp-watched", "home-page-view");
  console::StoredUserEvent seen;
  if (!stream->Read(&seen)) Check("WatchUserEvents", stream->Finish());
  Report("watch.visitor_id", seen.user_event().visitor_id());
  Report("watch.transport", console::Transport_Name(seen.transport()));
  context->TryCancel();
  while (stream->Read(&seen)) {
  }
  Report("watch.after_cancel", stream->Finish().error_code());
}

grpc::Status ListError(console::ConsoleService::Stub& reads, const std::string& key,
                       const console::ListUserEventsRequest& request) {
  console::ListUserEventsResponse listed;
  return reads.ListUserEvents(Call(key).get(), request, &listed);
}

// A watch's refusal comes where its first message would.
grpc::Status WatchError(console::ConsoleService::Stub& reads, const std::string& key,
                        const std::string& catalog, const std::string& filter) {
  console::WatchUserEventsRequest request;
  request.set_parent(catalog);
  request.set_filter(filter);
  auto context = Call(key);
  auto stream = reads.WatchUserEvents(context.get(), request);
  console::StoredUserEvent seen;
  while (stream->Read(&seen)) {
  }
  return stream->Finish();
}

void Rejections(console::ConsoleService::Stub& reads, const std::string& key,
                const std::string& catalog) {
  console::ListRejectionsRequest request;
  request.set_parent(catalog);
  console::ListRejectionsResponse listed;
  Check("ListRejections", reads.ListRejections(Call(key).get(), request, &listed));
  for (const auto& rejection : listed.rejections()) {
    Report("rejection.method", rejection.method());
    Report("rejection.code", rejection.code());
    Report("rejection.key_name", rejection.key_name());
    for (const auto& violation : rejection.field_violations()) {
      Report("rejection.violation", violation.field() + ": " + violation.description());
    }
  }
}

void Reset(console::ConsoleService::Stub& reads, const std::string& reader,
           const std::string& admin, const std::string& catalog) {
  console::ResetCatalogRequest request;
  request.set_name(catalog);
  console::ResetResponse done;
  Refused("refused.reset", reads.ResetCatalog(Call(reader).get(), request, &done));
  Check("ResetCatalog", reads.ResetCatalog(Call(admin).get(), request, &done));
  Report("reset.events", done.deleted_events_count());
  Report("reset.rejections", done.deleted_rejections_count());
  console::CountUserEventsRequest count;
  count.set_parent(catalog);
  console::CountUserEventsResponse counted;
  Check("CountUserEvents", reads.CountUserEvents(Call(reader).get(), count, &counted));
  Report("reset.count_after", counted.count());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) Fail("usage: console ADDRESS CATALOG");
  const std::string catalog = argv[2];
  const std::string writer = Key("FOOTFALL_WRITER_KEY"), reader = Key("FOOTFALL_READER_KEY"),
                    admin = Key("FOOTFALL_ADMIN_KEY");
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  auto events = retail::UserEventService::NewStub(channel);
  auto reads = console::ConsoleService::NewStub(channel);

  Watch(*reads, *events, reader, writer, catalog);
  Write(*events, writer, catalog, "cpp-listed", "home-page-view");
  Write(*events, writer, catalog, "cpp-refused", "detail-page-view");  // no product: refused

  console::ListUserEventsRequest listed;
  listed.set_parent(catalog);
  listed.set_filter("visitorId = \"cpp-listed\"");
  console::ListUserEventsResponse page;
  Check("ListUserEvents", reads->ListUserEvents(Call(reader).get(), listed, &page));
  for (const auto& event : page.user_events()) {
    Report("list.visitor_id", event.user_event().visitor_id());
  }
  Rejections(*reads, reader, catalog);

  console::ListUserEventsRequest everything;
  everything.set_parent(catalog);
  Refused("refused.no_key", ListError(*reads, "", everything));
  Refused("refused.writer", ListError(*reads, writer, everything));
  console::ListUserEventsRequest filtered = everything;
  filtered.set_filter("colour = 1");
  Refused("refused.filter", ListError(*reads, reader, filtered));
  console::ListUserEventsRequest made_up = everything;
  made_up.set_page_token("made-up");
  Refused("refused.page_token", ListError(*reads, reader, made_up));
  Refused("refused.watch_filter", WatchError(*reads, reader, catalog, "colour = 1"));

  insights::ComputeTotalsRequest totals;
  totals.set_parent(catalog);
  insights::ComputeTotalsResponse computed;
  Check("ComputeTotals", insights::InsightsService::NewStub(channel)->ComputeTotals(
                             Call(reader).get(), totals, &computed));
  Report("totals.distinct_visitors", computed.distinct_visitors());
  Reset(*reads, reader, admin, catalog);
  return 0;
}
