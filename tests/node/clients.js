// How the sample tests reach a running Footfall with an official Node.js client,
// unchanged: FOOTFALL_TRANSPORT=grpc (the default) over FOOTFALL_GRPC_ADDRESS, no
// TLS; FOOTFALL_TRANSPORT=rest over FOOTFALL_HTTP_ADDRESS with the clients' own
// HTTP/JSON transport (`fallback: true`, which speaks the google.api.http
// bindings), plain http, a bearer token the server does not ask for.
'use strict';

const {grpc, googleAuthLibrary} = require('google-gax');

function split(address) {
  const separator = address.lastIndexOf(':');
  return {apiEndpoint: address.slice(0, separator), port: Number(address.slice(separator + 1))};
}

/** The constructor options of a client for this run's transport. */
function clientOptions() {
  const transport = process.env.FOOTFALL_TRANSPORT || 'grpc';
  if (transport === 'grpc') {
    const address = process.env.FOOTFALL_GRPC_ADDRESS;
    if (!address) throw new Error('set FOOTFALL_GRPC_ADDRESS');
    // (the talent client brings a google-gax of its own; both load one
    // @grpc/grpc-js, so these credentials are of the class it checks for)
    return {...split(address), sslCreds: grpc.credentials.createInsecure()};
  }
  if (transport !== 'rest') throw new Error(`FOOTFALL_TRANSPORT: grpc or rest, not ${transport}`);
  const address = process.env.FOOTFALL_HTTP_ADDRESS;
  if (!address) throw new Error('set FOOTFALL_HTTP_ADDRESS');
  // Without an auth client the REST transport looks for Google credentials.
  const authClient = new googleAuthLibrary.OAuth2Client();
  authClient.setCredentials({access_token: 'footfall-emulator',
    expiry_date: Date.now() + 3600 * 1000});
  return {...split(address), protocol: 'http', fallback: true, authClient};
}

/** A refused call's gRPC code, message and the fields its google.rpc.BadRequest
 * names. google-gax decodes a refusal from either transport into a GoogleError
 * (code, message, statusDetails); but the google-gax 5 that @google-cloud/talent
 * 7.1.1 brings lets a REST answer of 4xx through as gaxios's own error, whose code
 * is the HTTP status and whose message is the whole JSON body: that body is read
 * here, so both clients are judged on what the server said. */
function refusal(error) {
  if (error.constructor.name === 'GaxiosError') {
    const body = JSON.parse(error.message).error;
    return {code: grpc.status[body.status], message: body.message,
      fields: (body.details || []).flatMap((detail) =>
        (detail.fieldViolations || []).map((violation) => violation.field))};
  }
  return {code: error.code, message: error.message,
    fields: (error.statusDetails || []).flatMap((detail) =>
      (detail.fieldViolations || []).map((violation) => violation.field))};
}

module.exports = {clientOptions, refusal};
