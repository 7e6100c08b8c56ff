# A Ruby client of Footfall's own contracts (footfall.console.v1, footfall.insights.v1),
# generated at test time from protos/ as client.rb is: what an integration test of a Ruby
# team does. It writes events with one key, then reads through the console with others
# whether each arrived or was refused (with which field), watches a catalog and cancels
# the watch, and resets the catalog. Run by test_console_clients.py as
# `ruby -I GENERATED console.rb ADDRESS CATALOG` with the keys in FOOTFALL_WRITER_KEY,
# FOOTFALL_READER_KEY and FOOTFALL_ADMIN_KEY; it prints what it was answered as key=value
# lines.
require 'grpc'
require 'grpc/google_rpc_status_utils' # GRPC::BadStatus#to_rpc_status
require 'google/protobuf/well_known_types' # Any#unpack
require 'google/rpc/error_details_pb'
require 'footfall/retail/v2/user_event_service_services_pb'
require 'footfall/console/v1/console_services_pb'
require 'footfall/insights/v1/insights_services_pb'

Retail = Google::Cloud::Retail::V2
Console = Footfall::Console::V1
Insights = Footfall::Insights::V1
CALL_DEADLINE = 10 # seconds
WATCH_DEADLINE = 20

def report(key, value)
  puts "#{key}=#{value.to_s.tr("\n", ' ')}"
end

# A call's options: its deadline, and its key (none when nil).
def options(key)
  { deadline: Time.now + CALL_DEADLINE, metadata: key ? { 'x-goog-api-key' => key } : {} }
end

def write(events, key, catalog, visitor, event_type)
  events.write_user_event(
    Retail::WriteUserEventRequest.new(
      parent: catalog, user_event: { event_type: event_type, visitor_id: visitor }
    ), **options(key)
  )
  report("write.#{visitor}", GRPC::Core::StatusCodes::OK)
rescue GRPC::BadStatus => e
  report("write.#{visitor}", e.code)
end

# A refusal's code, message and what a client can act on: the fields of a
# google.rpc.BadRequest, the reason of a google.rpc.ErrorInfo.
def refused(key)
  yield
  report("#{key}.code", GRPC::Core::StatusCodes::OK)
rescue GRPC::BadStatus => e
  report("#{key}.code", e.code)
  report("#{key}.message", e.details)
  (e.to_rpc_status&.details || []).each do |detail|
    bad = detail.unpack(Google::Rpc::BadRequest)
    bad&.field_violations&.each { |violation| report("#{key}.field", violation.field) }
    info = detail.unpack(Google::Rpc::ErrorInfo)
    report("#{key}.reason", info.reason) if info
  end
end

# A Ruby stream's headers come with its first message, so the watch cannot say when it
# is open: it starts from a position (after_id 0, the first event, and a filter that
# selects the one written before), and is cancelled once that one came.
def watch(reads, key, catalog)
  call = reads.watch_user_events(
    Console::WatchUserEventsRequest.new(parent: catalog, filter: 'visitorId = "ruby-watched"',
                                        after_id: 0),
    deadline: Time.now + WATCH_DEADLINE, metadata: { 'x-goog-api-key' => key },
    return_op: true
  )
  stream = call.execute
  seen = stream.next
  report('watch.visitor_id', seen.user_event.visitor_id)
  report('watch.transport', seen.transport)
  call.cancel # the client goes: the next read says so, and the server ends the watch
  begin
    stream.next
    report('watch.after_cancel', GRPC::Core::StatusCodes::OK)
  rescue GRPC::BadStatus => e
    report('watch.after_cancel', e.code)
  end
end

def rejections(reads, key, catalog)
  reads.list_rejections(Console::ListRejectionsRequest.new(parent: catalog),
                        **options(key)).rejections.each do |rejection|
    # (rejection.method is Ruby's Object#method: the field is read by name)
    report('rejection.method', rejection['method'])
    report('rejection.code', rejection.code)
    report('rejection.key_name', rejection.key_name)
    rejection.field_violations.each do |violation|
      report('rejection.violation', "#{violation.field}: #{violation.description}")
    end
  end
end

# The first message of a stream brings its refusal.
def watch_error(reads, key, catalog, filter)
  reads.watch_user_events(Console::WatchUserEventsRequest.new(parent: catalog, filter: filter),
                          **options(key)).first
end

def reset(reads, reader, admin, catalog)
  request = Console::ResetCatalogRequest.new(name: catalog)
  refused('refused.reset') { reads.reset_catalog(request, **options(reader)) }
  done = reads.reset_catalog(request, **options(admin))
  report('reset.events', done.deleted_events_count)
  report('reset.rejections', done.deleted_rejections_count)
  report('reset.count_after', reads.count_user_events(
    Console::CountUserEventsRequest.new(parent: catalog), **options(reader)
  ).count)
end

abort('usage: console.rb ADDRESS CATALOG') unless ARGV.length == 2
address, catalog = ARGV
writer, reader, admin = %w[WRITER READER ADMIN].map { |role| ENV.fetch("FOOTFALL_#{role}_KEY") }
events = Retail::UserEventService::Stub.new(address, :this_channel_is_insecure)
reads = Console::ConsoleService::Stub.new(address, :this_channel_is_insecure)

write(events, writer, catalog, 'ruby-watched', 'home-page-view')
write(events, writer, catalog, 'ruby-listed', 'home-page-view')
write(events, writer, catalog, 'ruby-refused', 'detail-page-view') # no product: refused
watch(reads, reader, catalog)
reads.list_user_events(Console::ListUserEventsRequest.new(
                         parent: catalog, filter: 'visitorId = "ruby-listed"'
                       ), **options(reader)).user_events.each do |event|
  report('list.visitor_id', event.user_event.visitor_id)
end
rejections(reads, reader, catalog)

everything = Console::ListUserEventsRequest.new(parent: catalog)
refused('refused.no_key') { reads.list_user_events(everything, **options(nil)) }
refused('refused.writer') { reads.list_user_events(everything, **options(writer)) }
refused('refused.filter') do
  reads.list_user_events(Console::ListUserEventsRequest.new(parent: catalog, filter: 'colour = 1'),
                         **options(reader))
end
refused('refused.page_token') do
  reads.list_user_events(Console::ListUserEventsRequest.new(parent: catalog,
                                                            page_token: 'made-up'),
                         **options(reader))
end
refused('refused.watch_filter') { watch_error(reads, reader, catalog, 'colour = 1') }

totals = Insights::InsightsService::Stub.new(address, :this_channel_is_insecure)
  .compute_totals(Insights::ComputeTotalsRequest.new(parent: catalog), **options(reader))
report('totals.distinct_visitors', totals.distinct_visitors)
reset(reads, reader, admin, catalog)
