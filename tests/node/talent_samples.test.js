// The official Node.js Talent client (@google-cloud/talent) against a running
// Footfall, repeating Google's Node samples of CreateClientEvent: nodejs-talent's
// samples/snippet/job_search_create_client_event.js (v4: a parent made by
// client.tenantPath, createTime {seconds: 0}, a VIEW of two jobs) and the generated
// samples/generated/{v4,v4beta1}/event_service.create_client_event.js (the request
// as given, the answer printed). Data of their shape, our own; over either
// transport (clients.js). Run by tests/node/test_node_event_samples.py, which starts
// the server and sets FOOTFALL_TRANSPORT and its address, and FOOTFALL_TALENT_PROJECT.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const talent = require('@google-cloud/talent');
const {grpc} = require('google-gax');
const {clientOptions, refusal} = require('./clients');

const projectId = process.env.FOOTFALL_TALENT_PROJECT;
assert.ok(projectId, 'set FOOTFALL_TALENT_PROJECT');
const options = clientOptions();
const client = new talent.v4.EventServiceClient(options);
const betaClient = new talent.v4beta1.EventServiceClient(options);
const deadline = {timeout: 10000};

test.after(() => Promise.all([client.close(), betaClient.close()]));

const printed = (value) => JSON.parse(JSON.stringify(value));

function refusedNaming(code, fields, pattern) {
  return (error) => {
    const refused = refusal(error);
    assert.equal(refused.code, code, refused.message);
    if (fields) assert.deepEqual(refused.fields, fields, refused.message);
    if (pattern) assert.match(refused.message, pattern);
    return true;
  };
}

// job_search_create_client_event.js's event, its placeholders filled.
function sampleEvent(tenantName, eventId, jobIds = ['night-nurse', 'day-nurse']) {
  return {
    requestId: 'req-7f3c-from-search-metadata',
    eventId,
    createTime: {seconds: 0},
    jobEvent: {type: 'VIEW', jobs: jobIds.map((id) => `${tenantName}/jobs/${id}`)},
  };
}

test('job_search_create_client_event.js: tenantPath parent, createTime at the epoch',
  async () => {
    const formattedParent = client.tenantPath(projectId, 'nodejs-sample-tenant');
    assert.equal(formattedParent, `projects/${projectId}/tenants/nodejs-sample-tenant`);
    const clientEvent = sampleEvent(formattedParent, 'node-sample-event-1');
    const responses = await client.createClientEvent(
      {parent: formattedParent, clientEvent}, deadline);
    // the sample prints "Created client event" once responses[0] is there
    const created = printed(responses[0]);
    assert.equal(created.eventId, 'node-sample-event-1');
    assert.equal(created.requestId, clientEvent.requestId);
    assert.equal(Number(created.createTime.seconds), 0);
    assert.equal(created.jobEvent.type, 'VIEW');
    assert.deepEqual(created.jobEvent.jobs, clientEvent.jobEvent.jobs);
    // the same event again (a retry) is answered with the one stored; another event
    // under a used id is ALREADY_EXISTS
    const [again] = await client.createClientEvent(
      {parent: formattedParent, clientEvent}, deadline);
    assert.deepEqual(printed(again), created);
    const other = {...clientEvent, jobEvent: {...clientEvent.jobEvent, type: 'APPLICATION_START'}};
    await assert.rejects(client.createClientEvent({parent: formattedParent, clientEvent: other},
      deadline), refusedNaming(grpc.status.ALREADY_EXISTS, null, /'node-sample-event-1'/));
  });

test('job_search_create_client_event.js run as published: its placeholders refused',
  async () => {
    // Its yargs defaults, when run with no arguments: a parent that is no tenant...
    const unfilled = client.tenantPath('Your Google Cloud Project ID',
      'Your Tenant ID (using tenancy is optional)');
    const tenantName = client.tenantPath(projectId, 'nodejs-sample-tenant');
    const clientEvent = {
      requestId: '[request_id from ResponseMetadata]',
      eventId: '[Set this to a unique identifier]',
      createTime: {seconds: 0},
      jobEvent: {type: 'VIEW', jobs: [
        'projects/[Project ID]/tenants/[Tenant ID]/jobs/[Job ID]',
        'projects/[Project ID]/tenants/[Tenant ID]/jobs/[Job ID]',
      ]},
    };
    await assert.rejects(client.createClientEvent({parent: unfilled, clientEvent}, deadline),
      refusedNaming(grpc.status.INVALID_ARGUMENT, ['parent', 'client_event.job_event.jobs[0]',
        'client_event.job_event.jobs[1]']));
    // ...and, under a real tenant, jobs of no tenant of its project
    await assert.rejects(client.createClientEvent({parent: tenantName, clientEvent}, deadline),
      refusedNaming(grpc.status.INVALID_ARGUMENT,
        ['client_event.job_event.jobs[0]', 'client_event.job_event.jobs[1]']));
  });

test('event_service.create_client_event.js (generated, v4): the request as given',
  async () => {
    const parent = `projects/${projectId}/tenants/generated-sample`;
    const clientEvent = {
      requestId: 'req-generated-1',
      eventId: 'generated-v4-1',
      createTime: {seconds: Math.round(Date.now() / 1000), nanos: 250000000},
      jobEvent: {type: 'INTERVIEW_GRANTED', jobs: [`${parent}/jobs/welder-3`]},
      eventNotes: 'second interview booked',
    };
    const response = await client.createClientEvent({parent, clientEvent}, deadline);
    const answered = printed(response[0]);
    assert.equal(answered.eventNotes, 'second interview booked');
    assert.equal(answered.jobEvent.type, 'INTERVIEW_GRANTED');
    assert.equal(answered.createTime.nanos, 250000000);
  });

test('event_service.create_client_event.js (generated, v4beta1): one row with v4\'s',
  async () => {
    const parent = `projects/${projectId}/tenants/generated-sample`;
    const clientEvent = {
      requestId: 'req-generated-2',
      eventId: 'generated-v4beta1-1',
      createTime: {seconds: 1716213787},
      jobEvent: {type: 'APPLICATION_FINISH', jobs: [`${parent}/jobs/welder-3`]},
    };
    const [viaBeta] = await betaClient.createClientEvent({parent, clientEvent}, deadline);
    assert.equal(printed(viaBeta).jobEvent.type, 'APPLICATION_FINISH');
    // the same event through v4 is the row v4beta1 wrote, answered as stored
    const [viaV4] = await client.createClientEvent({parent, clientEvent}, deadline);
    // (v4beta1's JobEvent has a `profile` too, which the client fills in blank)
    const {type, jobs} = printed(viaV4).jobEvent;
    assert.deepEqual({type, jobs}, {type: 'APPLICATION_FINISH', jobs: clientEvent.jobEvent.jobs});
    // v4beta1's parent of a project alone: the project's default tenant
    const project = `projects/${projectId}`;
    const [created] = await betaClient.createClientEvent({
      parent: project,
      clientEvent: {...clientEvent, eventId: 'beta-default-tenant-1',
        jobEvent: {type: 'VIEW', jobs: [`${project}/jobs/forklift-1`]}},
    }, deadline);
    assert.deepEqual(printed(created).jobEvent.jobs, [`${project}/jobs/forklift-1`]);
  });
