// A Go client of Footfall's own contracts (footfall.console.v1, footfall.insights.v1),
// generated at test time from protos/ as client.go is: what an integration test of a Go
// team does. It writes events with one key, then reads through the console with others
// whether each arrived or was refused (with which field), watches a catalog and cancels
// the watch, and resets the catalog. Run by test_console_clients.py as
// `console ADDRESS CATALOG` with the keys in FOOTFALL_WRITER_KEY, FOOTFALL_READER_KEY and
// FOOTFALL_ADMIN_KEY; it prints what it was answered as key=value lines.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	console "footfall.test/console/v1"
	insights "footfall.test/insights/v1"
	retail "footfall.test/retail/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	callDeadline = 10 * time.Second
	// Shorter than the test's wait for the client: a watch whose headers never
	// come fails the client, saying so, before the test gives up on it.
	watchDeadline = 20 * time.Second
)

// withKey is a call context carrying an API key (none when key is empty).
func withKey(key string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-goog-api-key", key)
	}
	return ctx, cancel
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: console ADDRESS CATALOG")
	}
	address, catalog := os.Args[1], os.Args[2]
	writer, reader, admin := os.Getenv("FOOTFALL_WRITER_KEY"), os.Getenv("FOOTFALL_READER_KEY"),
		os.Getenv("FOOTFALL_ADMIN_KEY")
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure(), grpc.WithBlock())
	cancel()
	check("dial", err)
	defer conn.Close()
	events := retail.NewUserEventServiceClient(conn)
	reads := console.NewConsoleServiceClient(conn)

	// The watch opens first, with no after_id (only what is stored from now on): its
	// headers say it is open, so the event written next is among those it sends.
	watchCtx, stopWatch := context.WithTimeout(
		metadata.AppendToOutgoingContext(context.Background(), "x-goog-api-key", reader),
		watchDeadline)
	defer stopWatch()
	watch, err := reads.WatchUserEvents(watchCtx, &console.WatchUserEventsRequest{
		Parent: catalog, Filter: `visitorId = "go-watched"`})
	check("WatchUserEvents", err)
	_, err = watch.Header()
	check("WatchUserEvents.Header", err)

	write(events, writer, catalog, "go-watched", "home-page-view")
	write(events, writer, catalog, "go-listed", "home-page-view")
	write(events, writer, catalog, "go-refused", "detail-page-view") // no product: refused

	seen, err := watch.Recv()
	check("WatchUserEvents.Recv", err)
	report("watch.visitor_id", seen.GetUserEvent().GetVisitorId())
	report("watch.transport", seen.GetTransport().String())
	stopWatch() // the client goes: the next Recv says so, and the server ends the watch
	_, err = watch.Recv()
	report("watch.after_cancel", int(status.Code(err)))

	listed := listEvents(reads, reader, &console.ListUserEventsRequest{
		Parent: catalog, Filter: `visitorId = "go-listed"`})
	for _, event := range listed.GetUserEvents() {
		report("list.visitor_id", event.GetUserEvent().GetVisitorId())
	}
	rejections(reads, reader, catalog)

	// Refusals a test suite must be able to tell apart.
	refused("refused.no_key", listError(reads, "", &console.ListUserEventsRequest{Parent: catalog}))
	refused("refused.writer", listError(reads, writer, &console.ListUserEventsRequest{Parent: catalog}))
	refused("refused.filter", listError(reads, reader,
		&console.ListUserEventsRequest{Parent: catalog, Filter: "colour = 1"}))
	refused("refused.page_token", listError(reads, reader,
		&console.ListUserEventsRequest{Parent: catalog, PageToken: "made-up"}))
	refused("refused.watch_filter", watchError(reads, reader, catalog, "colour = 1"))

	totals(insights.NewInsightsServiceClient(conn), reader, catalog)
	reset(reads, reader, admin, catalog)
}

func write(events retail.UserEventServiceClient, key, catalog, visitor, eventType string) {
	ctx, cancel := withKey(key)
	defer cancel()
	_, err := events.WriteUserEvent(ctx, &retail.WriteUserEventRequest{Parent: catalog,
		UserEvent: &retail.UserEvent{EventType: eventType, VisitorId: visitor}})
	report("write."+visitor, int(status.Code(err)))
}

func listEvents(reads console.ConsoleServiceClient, key string,
	request *console.ListUserEventsRequest) *console.ListUserEventsResponse {
	ctx, cancel := withKey(key)
	defer cancel()
	listed, err := reads.ListUserEvents(ctx, request)
	check("ListUserEvents", err)
	return listed
}

func listError(reads console.ConsoleServiceClient, key string,
	request *console.ListUserEventsRequest) error {
	ctx, cancel := withKey(key)
	defer cancel()
	_, err := reads.ListUserEvents(ctx, request)
	return err
}

// watchError is what a watch's first Recv answers: a stream's refusal comes there.
func watchError(reads console.ConsoleServiceClient, key, catalog, filter string) error {
	ctx, cancel := withKey(key)
	defer cancel()
	watch, err := reads.WatchUserEvents(ctx,
		&console.WatchUserEventsRequest{Parent: catalog, Filter: filter})
	if err != nil {
		return err
	}
	_, err = watch.Recv()
	return err
}

// rejections reports the catalog's refusals with the field each names.
func rejections(reads console.ConsoleServiceClient, key, catalog string) {
	ctx, cancel := withKey(key)
	defer cancel()
	listed, err := reads.ListRejections(ctx, &console.ListRejectionsRequest{Parent: catalog})
	check("ListRejections", err)
	for _, rejection := range listed.GetRejections() {
		report("rejection.method", rejection.GetMethod())
		report("rejection.code", rejection.GetCode())
		report("rejection.key_name", rejection.GetKeyName())
		for _, violation := range rejection.GetFieldViolations() {
			report("rejection.violation", violation.GetField()+": "+violation.GetDescription())
		}
	}
}

func totals(reads insights.InsightsServiceClient, key, catalog string) {
	ctx, cancel := withKey(key)
	defer cancel()
	computed, err := reads.ComputeTotals(ctx, &insights.ComputeTotalsRequest{Parent: catalog})
	check("ComputeTotals", err)
	report("totals.distinct_visitors", computed.GetDistinctVisitors())
}

// reset tries a reader key (refused: resets need admin), then the admin key, then counts.
func reset(reads console.ConsoleServiceClient, reader, admin, catalog string) {
	ctx, cancel := withKey(reader)
	_, err := reads.ResetCatalog(ctx, &console.ResetCatalogRequest{Name: catalog})
	cancel()
	refused("refused.reset", err)
	ctx, cancel = withKey(admin)
	done, err := reads.ResetCatalog(ctx, &console.ResetCatalogRequest{Name: catalog})
	cancel()
	check("ResetCatalog", err)
	report("reset.events", done.GetDeletedEventsCount())
	report("reset.rejections", done.GetDeletedRejectionsCount())
	ctx, cancel = withKey(reader)
	counted, err := reads.CountUserEvents(ctx, &console.CountUserEventsRequest{Parent: catalog})
	cancel()
	check("CountUserEvents", err)
	report("reset.count_after", counted.GetCount())
}

// refused reports a refusal's code, message and the details a client can act on:
// the fields of a google.rpc.BadRequest, the reason of a google.rpc.ErrorInfo.
func refused(key string, err error) {
	answer := status.Convert(err)
	report(key+".code", int(answer.Code()))
	report(key+".message", answer.Message())
	for _, detail := range answer.Details() {
		switch detail := detail.(type) {
		case *errdetails.BadRequest:
			for _, violation := range detail.GetFieldViolations() {
				report(key+".field", violation.GetField())
			}
		case *errdetails.ErrorInfo:
			report(key+".reason", detail.GetReason())
		}
	}
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
