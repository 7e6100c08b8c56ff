// Google's Node.js user-event samples (nodejs-retail samples/interactive-tutorials/
// events/*.js, their setup/setup-cleanup.js helpers writeUserEvent and purgeUserEvents,
// setup/events-create-gcs-bucket.js and setup/update-user-events-json.js,
// test-resources-setup/{create,remove}-test-resources.js, and the test/*.test.js that
// run them) repeated with the official client against a running
// Footfall, over either of its transports (clients.js): the same requests, with data
// of their shape (our own), asserting what their tests assert of the output, and a
// little more of the answers. Run by tests/node/test_node_event_samples.py, which
// starts the server and sets FOOTFALL_TRANSPORT and its address, FOOTFALL_CATALOG
// (projects/NUMBER/.../default_catalog) and FOOTFALL_GCS_ROOT (the folder the
// server reads gs:// URIs from).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {v2} = require('@google-cloud/retail');
const {grpc} = require('google-gax');
const {clientOptions, refusal} = require('./clients');

const parent = process.env.FOOTFALL_CATALOG;
const gcsRoot = process.env.FOOTFALL_GCS_ROOT;
assert.ok(parent && gcsRoot, 'set FOOTFALL_CATALOG and FOOTFALL_GCS_ROOT');

const client = new v2.UserEventServiceClient(clientOptions());
const deadline = {timeout: 10000};

test.after(() => client.close());

// The samples' visitor (write, purge and rejoin share it, one test at a time).
const visitorId = 'test_visitor_id';
const nowSeconds = () => Math.round(Date.now() / 1000);

// What the samples print: `Operation result: ${JSON.stringify(x)}`, which their
// tests read back with JSON.parse.
const printed = (value) => JSON.parse(JSON.stringify(value));

function refusedNaming(code, fields, pattern) {
  return (error) => {
    const refused = refusal(error);
    assert.equal(refused.code, code, refused.message);
    assert.deepEqual(refused.fields, fields, refused.message);
    if (pattern) assert.match(refused.message, pattern);
    return true;
  };
}

// setup-cleanup.js writeUserEvent: a detail-page-view of product `test_id`, now.
async function writeDetailView() {
  const [event] = await client.writeUserEvent({
    parent,
    userEvent: {
      eventType: 'detail-page-view',
      visitorId,
      eventTime: {seconds: nowSeconds()},
      productDetails: [{product: {id: 'test_id'}, quantity: {value: 3}}],
    },
  }, deadline);
  return event;
}

// setup-cleanup.js purgeUserEvents: no spaces around `=`, force; the samples only
// print the operation's name, so the purge's count is waited for here.
async function purgeVisitor(expected) {
  const [operation] = await client.purgeUserEvents({
    parent,
    filter: `visitorId="${visitorId}"`,
    force: true,
  }, deadline);
  assert.match(operation.name, new RegExp(`^${parent}/operations/purge-user-events-.+`));
  const [response] = await operation.promise();
  assert.equal(Number(response.purgedEventsCount), expected);
}

test('write-user-event.js: the event answered is the event sent, then purged', async () => {
  const userEvent = {eventType: 'home-page-view', visitorId, eventTime: {seconds: nowSeconds()}};
  const response = await client.writeUserEvent({userEvent, parent}, deadline);
  // write-user-event.test.js: eventType and visitorId of the printed result
  const result = printed(response[0]);
  assert.equal(result.eventType, 'home-page-view');
  assert.equal(result.visitorId, visitorId);
  assert.equal(Number(result.eventTime.seconds), userEvent.eventTime.seconds);
  await purgeVisitor(1);
});

test('purge-user-events.js: setup\'s detail-page-view written, then purged', async () => {
  const event = await writeDetailView();
  // purge-user-events.test.js reads "Created event detail-page-view with visitor id ..."
  assert.equal(`Created event ${event.eventType} with visitor id ${event.visitorId}`,
    `Created event detail-page-view with visitor id ${visitorId}`);
  assert.deepEqual(event.productDetails.map((detail) =>
    [detail.product.id, detail.quantity.value]), [['test_id', 3]]);
  await purgeVisitor(1);
});

test('purge-user-events.js "TO CHECK ERROR HANDLING SET INVALID FILTER HERE"', async () => {
  await assert.rejects(
    client.purgeUserEvents({parent, filter: 'visitorId=test_visitor_id', force: true},
      deadline),
    refusedNaming(grpc.status.INVALID_ARGUMENT, ['filter']));
});

test('rejoin-user-events.js: scope UNJOINED_EVENTS (2) as a number', async () => {
  await writeDetailView();
  const [operation] = await client.rejoinUserEvents({parent, userEventRejoinScope: 2},
    deadline);
  assert.match(operation.name, new RegExp(`^${parent}/operations/rejoin-user-events-.+`));
  // the product `test_id` is in no catalog of this server: nothing to rejoin
  const [response] = await operation.promise();
  assert.equal(Number(response.rejoinedUserEventsCount || 0), 0);
  await purgeVisitor(1);
});

// The three samples that import print `response` of operation.promise() whole;
// import-user-events-{gcs,big-query}.test.js expect an array of 3 whose third, the
// operation, is done.
function assertPrintedImport(answer, successes, failures) {
  const [response, metadata, operation] = answer;
  assert.equal(Number(metadata.successCount | 0), successes);
  assert.equal(Number(metadata.failureCount | 0), failures);
  const result = printed(answer);
  assert.equal(result.length, 3);
  assert.equal(typeof result[1], 'object');
  assert.equal(result[2].done, true);
  assert.match(operation.name, new RegExp(`^${parent}/operations/import-user-events-.+`));
  return response;
}

test('import-user-events-inline.js: three home-page-views of random visitors', async () => {
  const generateEvent = (eventType) => ({
    eventType,
    visitorId: 'visitor_' + Math.random().toString(36).slice(2),
    eventTime: {seconds: nowSeconds()},
  });
  const [operation] = await client.importUserEvents({
    parent,
    inputConfig: {userEventInlineSource: {userEvents: [
      generateEvent('home-page-view'), generateEvent('home-page-view'),
      generateEvent('home-page-view'),
    ]}},
  }, deadline);
  const response = assertPrintedImport(await operation.promise(), 3, 0);
  assert.deepEqual(response.errorSamples, []);
});

// setup/events-create-gcs-bucket.js uploads resources/user_events.json and
// user_events_some_invalid.json to a new bucket (here: a folder of the server's
// gcs root), after setup/update-user-events-json.js moved their times to a day ago.
// Lines of their shape: compact JSON, toISOString() times, the detail-page-view's
// productDetails an object (not a list) and its quantity a bare number.
function uploadEventsFiles(bucketName, productId = 'SHOE-TRAIL-42') {
  const yesterday = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  const line = (eventType, extra = {}) => JSON.stringify(
    {eventType, visitorId: 'group7_visitor3', eventTime: yesterday, ...extra});
  const lines = (secondType) => [
    line('home-page-view'),
    line(secondType, {searchQuery: 'waterproof trail shoes'}),
    line('search', {searchQuery: 'merino running socks'}),
    line('detail-page-view', {productDetails: {product: {id: productId}, quantity: 3}}),
  ].map((text) => text + '\n').join('');
  const bucket = path.join(gcsRoot, bucketName);
  fs.mkdirSync(bucket, {recursive: true});
  fs.writeFileSync(path.join(bucket, 'user_events.json'), lines('search'));
  fs.writeFileSync(path.join(bucket, 'user_events_some_invalid.json'), lines('invalid'));
  return bucket;
}

async function importFromGcs(bucketName, gcsEventsObject) {
  const [operation] = await client.importUserEvents({
    parent,
    inputConfig: {
      gcsSource: {inputUris: [`gs://${bucketName}/${gcsEventsObject}`], dataSchema: 'user_event'},
    },
    errorsConfig: {gcsPrefix: `gs://${bucketName}/error`},
  }, deadline);
  return operation.promise();
}

test('import-user-events-gcs.js: its bucket\'s user_events.json, errors to /error', async () => {
  // import-user-events-gcs.test.js's bucket: `user_events_${seconds}`
  const bucketName = `user_events_${nowSeconds()}`;
  uploadEventsFiles(bucketName);
  const response = assertPrintedImport(await importFromGcs(bucketName, 'user_events.json'),
    4, 0);
  assert.deepEqual(response.errorSamples, []);
  assert.equal(response.errorsConfig.gcsPrefix, `gs://${bucketName}/error`);
});

test('import-user-events-gcs.js "TO CHECK ERROR HANDLING USE THE JSON WITH INVALID ' +
     'USER EVENTS"', async () => {
  const bucketName = `user_events_invalid_${nowSeconds()}`;
  const bucket = uploadEventsFiles(bucketName);
  const response = assertPrintedImport(
    await importFromGcs(bucketName, 'user_events_some_invalid.json'), 3, 1);
  // the refused line is the one of event type "invalid", its second
  assert.equal(response.errorSamples.length, 1);
  assert.equal(response.errorSamples[0].code, grpc.status.INVALID_ARGUMENT);
  assert.match(response.errorSamples[0].message,
    /user_events_some_invalid\.json line 2: user_event\.search_query: .*'invalid'/);
  // ...and its error is written under the errors folder the sample named
  const written = fs.readdirSync(path.join(bucket, 'error'), {recursive: true})
    .filter((name) => fs.statSync(path.join(bucket, 'error', name)).isFile());
  assert.ok(written.length >= 1, 'no error file under the errors folder');
});

// test-resources-setup/create-test-resources.js: products.json into a products bucket
// and imported from it into the branch (data_schema "product", errors to /error), and
// user_events.json into an events bucket; remove-test-resources.js: setup-cleanup.js
// deleteProductsAll (listProductsAsync, deleteProduct each, "N deleted products").
// Between them, what the tutorials' rejoin is for: events of a product the catalog did
// not hold yet are joined once it does.
test('create-test-resources.js, a rejoin of what it imported, remove-test-resources.js',
  async () => {
    const products = new v2.ProductServiceClient(clientOptions());
    try {
      const branch = `${parent}/branches/default_branch`;
      const suffix = nowSeconds();
      const eventsBucket = `events_${suffix}`;
      // (a product of its own: the imports before left unjoined events of theirs)
      uploadEventsFiles(eventsBucket, 'BOOT-ALPINE-9');
      // the events first: their product is in no catalog yet
      const [response] = await importFromGcs(eventsBucket, 'user_events.json');
      assert.deepEqual(response.importSummary && [Number(response.importSummary.joinedEventsCount),
        Number(response.importSummary.unjoinedEventsCount)], [3, 1]);
      const productsBucket = path.join(gcsRoot, `products_${suffix}`);
      fs.mkdirSync(productsBucket, {recursive: true});
      fs.writeFileSync(path.join(productsBucket, 'products.json'), ['BOOT-ALPINE-9', 'BOOT-FELL-3']
        .map((id) => JSON.stringify({id, title: `Walking boot ${id}`, categories: ['Shoes'],
          brands: ['Footfall'], availability: 'IN_STOCK',
          priceInfo: {currencyCode: 'USD', price: 89.0, originalPrice: 99.0}}) + '\n').join(''));
      const [importing] = await products.importProducts({
        parent: branch,
        inputConfig: {gcsSource: {inputUris: [`gs://products_${suffix}/products.json`],
          dataSchema: 'product'}},
        errorsConfig: {gcsPrefix: `gs://products_${suffix}/error`},
      }, deadline);
      const [, imported] = await importing.promise();
      assert.equal(Number(imported.successCount | 0), 2);
      // rejoin-user-events.js's scope: the detail-page-view of BOOT-ALPINE-9 joins now
      const [rejoin] = await client.rejoinUserEvents({parent, userEventRejoinScope: 2},
        deadline);
      const [rejoined] = await rejoin.promise();
      assert.equal(Number(rejoined.rejoinedUserEventsCount), 1);
      // remove-test-resources.js
      let counter = 0;
      for await (const product of products.listProductsAsync({parent: branch}, deadline)) {
        await products.deleteProduct({name: product.name}, deadline);
        counter++;
      }
      assert.equal(`${counter} deleted products`, '2 deleted products');
      const left = [];
      for await (const product of products.listProductsAsync({parent: branch}, deadline)) {
        left.push(product.name);
      }
      assert.deepEqual(left, []);
    } finally {
      await products.close();
    }
  });

test('import-user-events-big-query.js: refused, naming the BigQuery source', async () => {
  // (its dataset `user_events` and table `events`, from create-test-resources.js)
  const request = {
    parent,
    inputConfig: {bigQuerySource: {
      projectId: 'footfall-samples', datasetId: 'user_events', tableId: 'events',
      dataSchema: 'user_event',
    }},
  };
  await assert.rejects(client.importUserEvents(request, deadline),
    refusedNaming(grpc.status.INVALID_ARGUMENT, ['input_config.big_query_source'],
      /BigQuery is not available.*gcs_source/));
});

test('the samples\' "PASTE THE INVALID CATALOG NAME HERE": refused naming parent', async () => {
  const request = {
    parent: 'invalid_catalog_name',
    userEvent: {eventType: 'home-page-view', visitorId, eventTime: {seconds: nowSeconds()}},
  };
  // (over REST the client itself refuses: the name fits no URL of the method)
  await assert.rejects(client.writeUserEvent(request, deadline),
    process.env.FOOTFALL_TRANSPORT === 'rest' ? /Cannot build HTTP request/
      : refusedNaming(grpc.status.INVALID_ARGUMENT, ['parent']));
});
