// A Go client generated at test time from Footfall's protos/ (Debian's protoc-gen-go and
// protoc-gen-go-grpc). Run by test_clients.py as `client ADDRESS CATALOG TENANT`; it
// prints what the server answered as key=value lines and leaves the judging to the test.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	retail "footfall.test/retail/v2"
	talent "footfall.test/talent/v4"
	"google.golang.org/genproto/googleapis/longrunning"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	callDeadline      = 10 * time.Second
	operationDeadline = 30 * time.Second
	pollInterval      = 50 * time.Millisecond
)

func main() {
	if len(os.Args) != 4 {
		fail("usage: client ADDRESS CATALOG TENANT")
	}
	address, catalog, tenant := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure(), grpc.WithBlock())
	cancel()
	check("dial", err)
	defer conn.Close()

	events := retail.NewUserEventServiceClient(conn)
	write(events, catalog)
	refuse(events, catalog)
	importInline(events, longrunning.NewOperationsClient(conn), catalog)
	createClientEvent(talent.NewEventServiceClient(conn), tenant)
}

// writeEvent sends one WriteUserEvent under the call deadline.
func writeEvent(events retail.UserEventServiceClient, catalog string,
	event *retail.UserEvent) (*retail.UserEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	return events.WriteUserEvent(ctx,
		&retail.WriteUserEventRequest{Parent: catalog, UserEvent: event})
}

func write(events retail.UserEventServiceClient, catalog string) {
	written, err := writeEvent(events, catalog, &retail.UserEvent{
		EventType: "home-page-view",
		VisitorId: "go-visitor",
		Attributes: map[string]*retail.CustomAttribute{
			"client": {Text: []string{"go"}},
		},
	})
	check("WriteUserEvent", err)
	report("write.visitor_id", written.GetVisitorId())
	report("write.attribute", strings.Join(written.GetAttributes()["client"].GetText(), ","))
	report("write.event_time", stamp(written.GetEventTime()))
}

// refuse sends a visitor id one character too long and reports the status and the
// google.rpc.BadRequest detail that grpc-go decodes from the trailers.
func refuse(events retail.UserEventServiceClient, catalog string) {
	_, err := writeEvent(events, catalog, &retail.UserEvent{
		EventType: "home-page-view",
		VisitorId: strings.Repeat("v", 129),
	})
	refused := status.Convert(err)
	report("refused.code", int(refused.Code()))
	report("refused.message", refused.Message())
	for _, detail := range refused.Details() {
		if bad, ok := detail.(*errdetails.BadRequest); ok {
			for _, violation := range bad.GetFieldViolations() {
				report("refused.violation", violation.GetField()+": "+violation.GetDescription())
			}
		}
	}
}

// importInline imports three good events and one bad, then polls GetOperation until done.
func importInline(events retail.UserEventServiceClient, operations longrunning.OperationsClient,
	catalog string) {
	var batch []*retail.UserEvent
	for i := 0; i < 3; i++ {
		batch = append(batch, &retail.UserEvent{
			EventType: "home-page-view",
			VisitorId: fmt.Sprintf("go-import-%d", i),
			EventTime: timestamppb.New(time.Date(2024, 5, 20, 14, 0, i, 0, time.UTC)),
		})
	}
	// No event_time (an import needs one) and a detail view without products.
	batch = append(batch, &retail.UserEvent{EventType: "detail-page-view", VisitorId: "go-import-bad"})

	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	started, err := events.ImportUserEvents(ctx, &retail.ImportUserEventsRequest{
		Parent: catalog,
		InputConfig: &retail.UserEventInputConfig{
			Source: &retail.UserEventInputConfig_UserEventInlineSource{
				UserEventInlineSource: &retail.UserEventInlineSource{UserEvents: batch},
			},
		},
	})
	cancel()
	check("ImportUserEvents", err)
	report("import.operation", started.GetName())

	end := time.Now().Add(operationDeadline)
	polls := 0
	var operation *longrunning.Operation
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		operation, err = operations.GetOperation(ctx,
			&longrunning.GetOperationRequest{Name: started.GetName()})
		cancel()
		check("GetOperation", err)
		polls++
		if operation.GetDone() {
			break
		}
		if time.Now().After(end) {
			fail(fmt.Sprintf("%s not done after %v", started.GetName(), operationDeadline))
		}
		time.Sleep(pollInterval)
	}
	report("import.polls", polls)

	metadata := &retail.ImportMetadata{}
	check("ImportMetadata", operation.GetMetadata().UnmarshalTo(metadata))
	report("import.success_count", metadata.GetSuccessCount())
	report("import.failure_count", metadata.GetFailureCount())
	if failed := operation.GetError(); failed != nil {
		fail(fmt.Sprintf("import failed: %d %s", failed.GetCode(), failed.GetMessage()))
	}
	response := &retail.ImportUserEventsResponse{}
	check("ImportUserEventsResponse", operation.GetResponse().UnmarshalTo(response))
	for _, sample := range response.GetErrorSamples() {
		report("import.error_sample", fmt.Sprintf("%d %s", sample.GetCode(), sample.GetMessage()))
	}
	summary := response.GetImportSummary()
	report("import.joined_events_count", summary.GetJoinedEventsCount())
	report("import.unjoined_events_count", summary.GetUnjoinedEventsCount())
}

// createClientEvent creates a job view, retries it unchanged (the stored event comes
// back), then reuses its id for another event (ALREADY_EXISTS).
func createClientEvent(events talent.EventServiceClient, tenant string) {
	event := &talent.ClientEvent{
		RequestId:  "go-search-1",
		EventId:    "go-event",
		CreateTime: timestamppb.New(time.Date(2024, 5, 20, 14, 3, 7, 250000000, time.UTC)),
		Event: &talent.ClientEvent_JobEvent{JobEvent: &talent.JobEvent{
			Type: talent.JobEvent_VIEW,
			Jobs: []string{tenant + "/jobs/data-engineer", tenant + "/jobs/sre"},
		}},
		EventNotes: "from the Go client",
	}
	create := func(sent *talent.ClientEvent) (*talent.ClientEvent, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		defer cancel()
		return events.CreateClientEvent(ctx,
			&talent.CreateClientEventRequest{Parent: tenant, ClientEvent: sent})
	}
	created, err := create(event)
	check("CreateClientEvent", err)
	report("talent.event_id", created.GetEventId())
	report("talent.type", created.GetJobEvent().GetType().String())
	report("talent.jobs", strings.Join(created.GetJobEvent().GetJobs(), ","))
	report("talent.create_time", stamp(created.GetCreateTime()))

	again, err := create(event)
	check("CreateClientEvent (retry)", err)
	report("talent.retry_equal", proto.Equal(again, created))

	changed := proto.Clone(event).(*talent.ClientEvent)
	changed.EventNotes = "another note"
	_, err = create(changed)
	report("talent.reused_id.code", int(status.Code(err)))
}

// stamp writes a timestamp as seconds.nanoseconds, exactly, the same in every client.
func stamp(at *timestamppb.Timestamp) string {
	return fmt.Sprintf("%d.%09d", at.GetSeconds(), at.GetNanos())
}

func report(key string, value interface{}) {
	fmt.Printf("%s=%s\n", key, strings.ReplaceAll(fmt.Sprint(value), "\n", " "))
}

func check(what string, err error) {
	if err != nil {
		fail(fmt.Sprintf("%s: %v", what, err))
	}
}

func fail(why string) {
	fmt.Fprintln(os.Stderr, why)
	os.Exit(1)
}
