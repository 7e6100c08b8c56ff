# A Ruby client generated at test time from Footfall's protos/ (Debian's
# grpc_tools_ruby_protoc). Run by test_clients.py as
# `ruby -I GENERATED client.rb ADDRESS CATALOG TENANT`; it prints what the server answered
# as key=value lines and leaves the judging to the test.
require 'grpc'
require 'grpc/google_rpc_status_utils'
require 'google/protobuf/well_known_types'
require 'google/rpc/error_details_pb'
require 'google/longrunning/operations_services_pb'
require 'footfall/retail/v2/user_event_service_services_pb'
require 'footfall/talent/v4/event_service_services_pb'

Retail = Google::Cloud::Retail::V2
Talent = Google::Cloud::Talent::V4
CALL_DEADLINE = 10 # seconds
OPERATION_DEADLINE = 30
POLL_INTERVAL = 0.05

def report(key, value)
  puts "#{key}=#{value.to_s.tr("\n", ' ')}"
end

# A timestamp as seconds.nanoseconds, exactly, the same in every client.
def stamp(at)
  format('%<seconds>d.%<nanos>09d', seconds: at.seconds, nanos: at.nanos)
end

def deadline
  Time.now + CALL_DEADLINE
end

def write(events, catalog)
  written = events.write_user_event(
    Retail::WriteUserEventRequest.new(
      parent: catalog,
      user_event: { event_type: 'home-page-view', visitor_id: 'ruby-visitor',
                    attributes: { 'client' => { text: ['ruby'] } } }
    ), deadline: deadline
  )
  report('write.visitor_id', written.visitor_id)
  report('write.attribute', written.attributes['client'].text.join(','))
  report('write.event_time', stamp(written.event_time))
end

# A visitor id one character too long: the status, and the google.rpc.BadRequest inside
# the google.rpc.Status that the trailers carry.
def refuse(events, catalog)
  events.write_user_event(
    Retail::WriteUserEventRequest.new(
      parent: catalog, user_event: { event_type: 'home-page-view', visitor_id: 'v' * 129 }
    ), deadline: deadline
  )
  report('refused.code', 0)
rescue GRPC::BadStatus => e
  report('refused.code', e.code)
  report('refused.message', e.details)
  (e.to_rpc_status&.details || []).each do |detail|
    bad = detail.unpack(Google::Rpc::BadRequest) or next
    bad.field_violations.each do |violation|
      report('refused.violation', "#{violation.field}: #{violation.description}")
    end
  end
end

# Three good events and one bad, then GetOperation until the operation is done.
def import_inline(events, operations, catalog)
  batch = (0...3).map do |i|
    { event_type: 'home-page-view', visitor_id: "ruby-import-#{i}",
      event_time: { seconds: 1_716_213_600 + i } }
  end
  # No event_time (an import needs one) and a detail view without products.
  batch << { event_type: 'detail-page-view', visitor_id: 'ruby-import-bad' }
  started = events.import_user_events(
    Retail::ImportUserEventsRequest.new(
      parent: catalog, input_config: { user_event_inline_source: { user_events: batch } }
    ), deadline: deadline
  )
  report('import.operation', started.name)

  ends = Time.now + OPERATION_DEADLINE
  polls = 0
  operation = nil
  loop do
    operation = operations.get_operation(
      Google::Longrunning::GetOperationRequest.new(name: started.name), deadline: deadline
    )
    polls += 1
    break if operation.done
    abort("#{started.name} not done after #{OPERATION_DEADLINE}s") if Time.now > ends
    sleep POLL_INTERVAL
  end
  report('import.polls', polls)

  metadata = operation.metadata.unpack(Retail::ImportMetadata) or
    abort('metadata is not ImportMetadata')
  report('import.success_count', metadata.success_count)
  report('import.failure_count', metadata.failure_count)
  abort("import failed: #{operation.error.code} #{operation.error.message}") if operation.error
  response = operation.response.unpack(Retail::ImportUserEventsResponse) or
    abort('response is not ImportUserEventsResponse')
  response.error_samples.each do |sample|
    report('import.error_sample', "#{sample.code} #{sample.message}")
  end
  report('import.joined_events_count', response.import_summary.joined_events_count)
  report('import.unjoined_events_count', response.import_summary.unjoined_events_count)
end

# A job view, the same again (the stored event comes back), then its id reused for
# another event (ALREADY_EXISTS).
def create_client_event(events, tenant)
  event = Talent::ClientEvent.new(
    request_id: 'ruby-search-1', event_id: 'ruby-event',
    create_time: { seconds: 1_716_213_787, nanos: 250_000_000 },
    job_event: { type: :VIEW, jobs: ["#{tenant}/jobs/data-engineer", "#{tenant}/jobs/sre"] },
    event_notes: 'from the Ruby client'
  )
  create = lambda do |sent|
    request = Talent::CreateClientEventRequest.new(parent: tenant, client_event: sent)
    events.create_client_event(request, deadline: deadline)
  end
  created = create.call(event)
  report('talent.event_id', created.event_id)
  report('talent.type', created.job_event.type)
  report('talent.jobs', created.job_event.jobs.join(','))
  report('talent.create_time', stamp(created.create_time))
  report('talent.retry_equal', create.call(event) == created)

  changed = event.dup
  changed.event_notes = 'another note'
  begin
    create.call(changed)
    report('talent.reused_id.code', 0)
  rescue GRPC::BadStatus => e
    report('talent.reused_id.code', e.code)
  end
end

abort('usage: client.rb ADDRESS CATALOG TENANT') unless ARGV.length == 3
address, catalog, tenant = ARGV
events = Retail::UserEventService::Stub.new(address, :this_channel_is_insecure)
write(events, catalog)
refuse(events, catalog)
operations = Google::Longrunning::Operations::Stub.new(address, :this_channel_is_insecure)
import_inline(events, operations, catalog)
create_client_event(Talent::EventService::Stub.new(address, :this_channel_is_insecure), tenant)
