// The official Node.js client (@google-cloud/retail) against a running Footfall.
// Run by tests/node/test_node_client.py, which starts the server and sets
// FOOTFALL_GRPC_ADDRESS (host:port) and FOOTFALL_CATALOG.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const {v2} = require('@google-cloud/retail');
const {grpc} = require('google-gax');

const address = process.env.FOOTFALL_GRPC_ADDRESS;
const catalog = process.env.FOOTFALL_CATALOG;
assert.ok(address && catalog, 'set FOOTFALL_GRPC_ADDRESS and FOOTFALL_CATALOG');
const separator = address.lastIndexOf(':');

// No TLS and no Google credentials: the emulator's way in.
const client = new v2.UserEventServiceClient({
  apiEndpoint: address.slice(0, separator),
  port: Number(address.slice(separator + 1)),
  sslCreds: grpc.credentials.createInsecure(),
});
const deadline = {timeout: 10000};

test.after(() => client.close());

test('writeUserEvent stores the event and answers it with its event time', async () => {
  const [event] = await client.writeUserEvent({
    parent: catalog,
    userEvent: {eventType: 'home-page-view', visitorId: 'node-visitor-1'},
  }, deadline);
  assert.equal(event.eventType, 'home-page-view');
  assert.equal(event.visitorId, 'node-visitor-1');
  assert.ok(Number(event.eventTime.seconds) > 0, 'the server stamps the event time');
});

test('an invalid event is INVALID_ARGUMENT naming the field', async () => {
  await assert.rejects(
    client.writeUserEvent({parent: catalog, userEvent: {eventType: 'home-page-view'}}, deadline),
    (error) => {
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(error.message, /user_event\.visitor_id: is required/);
      return true;
    });
});

test('an inline import runs to completion as a long-running operation', async () => {
  const events = ['a', 'b', 'c'].map((id, i) => ({
    eventType: 'detail-page-view',
    visitorId: `node-import-${id}`,
    eventTime: {seconds: 1714564800 + i},
    productDetails: [{product: {id: `sku-${id}`}, quantity: {value: 1}}],
  }));
  const [operation] = await client.importUserEvents({
    parent: catalog,
    inputConfig: {userEventInlineSource: {userEvents: events}},
  }, deadline);
  assert.match(operation.name, /\/operations\/import-user-events-/);
  const [response, metadata] = await operation.promise();
  assert.equal(Number(metadata.successCount), 3);
  assert.equal(Number(metadata.failureCount || 0), 0);
  assert.equal(Number(response.importSummary.unjoinedEventsCount), 3);
});
