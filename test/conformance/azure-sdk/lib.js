// Shared helpers for the conformance scenarios. Each scenario is a script that drives the
// unmodified Azure IoT SDKs against a running `orrery serve` and exits 0 only when every
// check passed; it prints one "ok - <what>" line per check so that a failure's context is in
// the test log. Scenarios get their environment from test/conformance/azure_sdk_test.cc:
//   SERVICE_CS         iothubowner connection string (HostName=localhost;…)
//   ORRERY_CA          the development CA (also in NODE_EXTRA_CA_CERTS)
//   SCENARIO_PREFIX    a unique prefix for device ids
'use strict';

const https = require('https');
const fs = require('fs');
const iothub = require('azure-iothub');

const SERVICE_CS = process.env.SERVICE_CS;
if (!SERVICE_CS) {
  console.error('SERVICE_CS is not set (run through azure_sdk_test)');
  process.exit(2);
}
const PREFIX = process.env.SCENARIO_PREFIX || 'conf';
const CA = process.env.ORRERY_CA ? fs.readFileSync(process.env.ORRERY_CA) : undefined;

function parseCs(cs) {
  const out = {};
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
const SERVICE = parseCs(SERVICE_CS);
const HOST = SERVICE.HostName;

function ok(what) {
  console.log(`ok - ${what}`);
}

function fail(what) {
  throw new Error(what);
}

function assert(cond, what) {
  if (!cond) fail(`assertion failed: ${what}`);
  ok(what);
}

function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
  ok(what);
}

// Resolves with the first value `fn` yields within `ms`, or rejects naming `what`.
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

// Expects `promise` to reject; returns the error.
async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    ok(`${what} (refused: ${e.message || e})`);
    return e;
  }
  fail(`${what}: expected a refusal, but it succeeded`);
}

// The HTTP status behind an SDK error: the REST response's (azure-iothub, the provisioning
// service SDK, DPS over HTTPS), or the one in a DPS MQTT response topic
// ($dps/registrations/res/{status}/?…); undefined when the refusal carried none (a CONNACK).
function statusOf(e) {
  if (!e) return undefined;
  if (e.response && typeof e.response.statusCode === 'number') return e.response.statusCode;
  if (e.response && typeof e.response.status === 'number') return e.response.status;
  if (typeof e.statusCode === 'number') return e.statusCode;  // core-http's RestError
  const topic = e.transportObject && e.transportObject.topic;
  const m = typeof topic === 'string' && topic.match(/\/res\/(\d+)\//);
  return m ? Number(m[1]) : undefined;
}

// Expects `promise` to be refused within `ms` — by an answer, not by the SDK's or our own
// timeout — and, with `statuses`, with one of those HTTP statuses (list `undefined` to also
// accept a refusal without a status, e.g. a CONNACK). Returns the error.
async function refused(promise, what, { ms = 20000, statuses } = {}) {
  let err;
  try {
    await within(ms, what, promise);
  } catch (e) {
    err = e || new Error('rejected without an error');
  }
  if (!err) fail(`${what}: expected a refusal, but it succeeded`);
  const kind = (err.constructor && err.constructor.name) || err.name;
  if (/^timed out after/.test(err.message || '') || kind === 'TimeoutError') {
    fail(`${what}: no answer (${err.message})`);
  }
  const status = statusOf(err);
  if (statuses && !statuses.includes(status)) {
    fail(`${what}: expected status ${statuses.join(' or ')}, got ${status} (${kind}: ${err.message})`);
  }
  ok(`${what} (refused${status ? ` with ${status}` : ''}: ${kind}: ${err.message})`);
  return err;
}

// One page of a query, through the callback form of next(): the promise form in azure-iothub
// 1.16.6 and azure-iot-provisioning-service 1.11.2 (query.js) drops the stored continuation
// token, so it would fetch the first page forever.
function nextPage(query) {
  return new Promise((resolve, reject) => query.next((err, result, response) => (
    err ? reject(err) : resolve({ result, response }))));
}

// Every row of a query, page by page, with the page sizes (bounded: a server that never ends
// the paging fails the check instead of looping).
async function allPages(query, { maxPages = 1000 } = {}) {
  const rows = [];
  const sizes = [];
  while (query.hasMoreResults) {
    const { result } = await within(20000, 'a query page', nextPage(query));
    if (!Array.isArray(result)) fail(`a query page is not a JSON array: ${JSON.stringify(result)}`);
    rows.push(...result);
    sizes.push(result.length);
    if (sizes.length > maxPages) fail(`paging does not end after ${maxPages} pages`);
  }
  return { rows, pages: sizes.length, sizes };
}

function serviceToken() {
  const sas = iothub.SharedAccessSignature.create(
    HOST, SERVICE.SharedAccessKeyName, SERVICE.SharedAccessKey,
    Math.floor(Date.now() / 1000) + 3600);
  return sas.toString();
}

// A raw service REST call (for Orrery's extensions the SDK has no HTTP client for: sending
// cloud-to-device messages and reading feedback, which azure-iothub does over AMQP).
function rest(method, path, { body, headers = {}, token } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = https.request({
      host: HOST, port: 443, method,
      path: `${path}${path.includes('?') ? '&' : '?'}api-version=2021-04-12`,
      ca: CA,
      headers: {
        Authorization: token || serviceToken(),
        ...(data ? { 'Content-Length': data.length } : {}),
        ...headers,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// Sends a C2D message through the REST extension; props become iothub-app-* headers.
async function sendC2d(deviceId, body, { messageId, ack, props = {} } = {}) {
  const headers = {};
  if (messageId) headers['iothub-messageid'] = messageId;
  if (ack) headers['iothub-ack'] = ack;
  for (const [k, v] of Object.entries(props)) headers[`iothub-app-${k}`] = v;
  const r = await rest('POST', `/devices/${encodeURIComponent(deviceId)}/messages/devicebound`,
    { body, headers });
  if (r.status !== 200) fail(`C2D send to ${deviceId}: HTTP ${r.status} ${r.text}`);
  return r.json;
}

// Reads (and completes) feedback until a record for `messageId` shows up.
// Records read so far (reading completes them, so a later wait may find its record here).
const seenFeedback = [];
async function waitForFeedback(messageId, ms = 15000) {
  const deadline = Date.now() + ms;
  const seen = seenFeedback;
  const early = seen.filter((rec) => rec.originalMessageId === messageId);
  if (early.length) return early;
  while (Date.now() < deadline) {
    const r = await rest('GET', '/messages/serviceBound/feedback');
    if (r.status === 200) {
      const lock = r.headers.etag.replace(/"/g, '');
      await rest('DELETE', `/messages/serviceBound/feedback/${encodeURIComponent(lock)}`);
      for (const rec of r.json) {
        seen.push(rec);
      }
      const hit = seen.filter((rec) => rec.originalMessageId === messageId);
      if (hit.length) return hit;
    } else if (r.status !== 204) {
      fail(`feedback: HTTP ${r.status} ${r.text}`);
    }
    await new Promise((res) => setTimeout(res, 200));  // feedback has no push channel over REST
  }
  fail(`no feedback record for message ${messageId} within ${ms} ms`);
}

async function createDevice(registry, deviceId, extra = {}) {
  try { await registry.delete(deviceId); } catch (e) { /* not there: fine */ }
  const r = await registry.create({ deviceId, ...extra });
  return r.responseBody;
}

function deviceConnectionString(device, moduleId) {
  const key = device.authentication.symmetricKey.primaryKey;
  return `HostName=${HOST};DeviceId=${device.deviceId}` +
    (moduleId ? `;ModuleId=${moduleId}` : '') + `;SharedAccessKey=${key}`;
}

// Runs a scenario: main(ctx) with a Registry and service Client; exits 0 on success.
function run(main) {
  const registry = iothub.Registry.fromConnectionString(SERVICE_CS);
  const client = iothub.Client.fromConnectionString(SERVICE_CS);
  const hardStop = setTimeout(() => {
    console.error('scenario did not finish within 150 s');
    process.exit(3);
  }, 150000);
  main({ registry, client, prefix: PREFIX, host: HOST })
    .then(() => {
      clearTimeout(hardStop);
      console.log('PASS');
      process.exit(0);
    })
    .catch((e) => {
      console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
      process.exit(1);
    });
}

module.exports = {
  HOST, CA, ok, fail, assert, assertEqual, within, rejects, rest, sendC2d, waitForFeedback,
  createDevice, deviceConnectionString, run, serviceToken, parseCs, statusOf, refused, nextPage,
  allPages,
};
