// The console's Go stubs in a program that also holds Google's Go retail messages (a
// stand-in for cloud.google.com/go/retail/apiv2/retailpb: see builds.py), generated as
// the README says: our retail files mapped to Google's package, so that both do not
// register Google's names (a panic at start). Run by test_generated_clients.py as
// `beside_google ADDRESS CATALOG` with FOOTFALL_READER_KEY; it lists the catalog's events
// and prints each one's visitor and Go type as key=value lines.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	console "footfall.test/console/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	retailpb "google.test/retailpb"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: beside_google ADDRESS CATALOG")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, os.Args[1], grpc.WithInsecure(), grpc.WithBlock())
	check("dial", err)
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-goog-api-key", os.Getenv("FOOTFALL_READER_KEY"))
	page, err := console.NewConsoleServiceClient(conn).ListUserEvents(ctx,
		&console.ListUserEventsRequest{Parent: os.Args[2]})
	check("ListUserEvents", err)
	for _, stored := range page.GetUserEvents() {
		var event *retailpb.UserEvent = stored.GetUserEvent() // Google's type, not a copy
		fmt.Printf("beside.visitor_id=%s\nbeside.type=%T\n", event.GetVisitorId(), event)
	}
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
