// Azure Digital Twins with the unmodified @azure/digital-twins-core and @azure/identity
// (ClientSecretCredential against Orrery's token endpoint): upload the RealEstateCore ontology
// (or a small set when ../shared is absent), get, list with paging and dependenciesFor,
// decommission, refused deletes and duplicates, roles, wrong secrets; then a site of 2,000 zone
// twins with relationships: upsert with If-None-Match, patch with If-Match, components,
// outgoing and incoming relationships, queries (IS_OF_MODEL, COUNT, JOIN, MATCH, TOP, paging),
// refused deletes; an event route (SDK) to a webhook endpoint (Orrery's endpoint API) served
// by a local HTTPS receiver, which sees the CloudEvents of patches, relationships and
// published telemetry.
// Environment (from azure_sdk_test.cc): TWINS_URL, AZURE_TENANT_ID, AZURE_CLIENT_ID,
// AZURE_CLIENT_SECRET (an owner), READER_CLIENT_ID, READER_CLIENT_SECRET, REC_DIR (optional),
// HOOK_CERT and HOOK_KEY (the receiver's TLS certificate, one the server trusts).
'use strict';

const fs = require('fs');
const https = require('https');
const path = require('path');
const { DigitalTwinsClient } = require('@azure/digital-twins-core');
const { ClientSecretCredential } = require('@azure/identity');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');
const { ok, assert, assertEqual, rejects, run, statusOf } = lib;

const URL = process.env.TWINS_URL;
const TENANT = process.env.AZURE_TENANT_ID;

function client(id, secret) {
  const credential = new ClientSecretCredential(TENANT, id, secret, {
    authorityHost: URL,
    disableInstanceDiscovery: true,
  });
  return new DigitalTwinsClient(URL, credential);
}

// An HTTPS receiver of CloudEvents batches on loopback; resolves with {port, events, close}.
function receiver() {
  const events = [];
  const server = https.createServer({
    cert: fs.readFileSync(process.env.HOOK_CERT), key: fs.readFileSync(process.env.HOOK_KEY),
  }, (req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.headers['content-type'].startsWith('application/cloudevents-batch+json')) {
        events.push(...JSON.parse(body));
      }
      res.writeHead(204);
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port, events, close: () => server.close(),
  })));
}

// A call to Orrery's endpoint API (ADT manages endpoints in its control plane, outside the SDK).
async function putEndpoint(credential, name, body, collection = 'endpoints') {
  const { token } = await credential.getToken('https://digitaltwins.azure.net/.default');
  const url = new globalThis.URL(`${URL}/${collection}/${name}?api-version=2023-10-31`);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'PUT', headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json',
      'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function until(what, done, ms = 30000, refresh = async () => {}) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await refresh();
    if (done()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
}

function readModels(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) {
        const v = JSON.parse(fs.readFileSync(p, 'utf8').replace(/^\uFEFF/, ''));
        out.push(...(Array.isArray(v) ? v : [v]));
      }
    }
  };
  walk(dir);
  return out;
}

// Batches of at most 250 (ADT's limit per call) in dependency order: what a client of ADT
// has to do for an ontology this size.
function batches(models) {
  const ids = new Set(models.map((m) => m['@id']));
  const deps = new Map();
  for (const m of models) {
    const refs = new Set();
    const visit = (v, key) => {
      if (key === 'target' || key === '@id') return;
      if (typeof v === 'string') {
        if (ids.has(v) && v !== m['@id']) refs.add(v);
      } else if (Array.isArray(v)) v.forEach((x) => visit(x));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, k);
    };
    visit(m);
    deps.set(m['@id'], refs);
  }
  const placed = new Set();
  const order = [];
  while (order.length < models.length) {
    const before = order.length;
    for (const m of models) {
      if (placed.has(m['@id'])) continue;
      if ([...deps.get(m['@id'])].every((d) => placed.has(d))) order.push(m);
    }
    for (const m of order.slice(before)) placed.add(m['@id']);
    if (order.length === before) throw new Error('a dependency cycle in the models');
  }
  const out = [];
  for (let i = 0; i < order.length; i += 250) out.push(order.slice(i, i + 250));
  return out;
}

const SMALL = [
  { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Space;1', '@type': 'Interface',
    displayName: 'Space', contents: [{ '@type': 'Property', name: 'name', schema: 'string' }] },
  { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Room;1', '@type': 'Interface',
    extends: 'dtmi:conf:Space;1',
    contents: [{ '@type': 'Property', name: 'temperature', schema: 'double' }] },
];

run(async ({ registry }) => {
  const owner = client(process.env.AZURE_CLIENT_ID, process.env.AZURE_CLIENT_SECRET);
  const reader = client(process.env.READER_CLIENT_ID, process.env.READER_CLIENT_SECRET);
  const rec = process.env.REC_DIR && fs.existsSync(process.env.REC_DIR);
  const models = rec ? readModels(process.env.REC_DIR) : SMALL;
  const space = rec ? 'dtmi:digitaltwins:rec_3_3:core:Space;1' : 'dtmi:conf:Space;1';
  const room = rec ? 'dtmi:digitaltwins:rec_3_3:core:Room;1' : 'dtmi:conf:Room;1';
  // A model nothing extends, to decommission and delete.
  const leaf = rec ? 'dtmi:digitaltwins:rec_3_3:building:MeditationRoom;1' : 'dtmi:conf:Room;1';
  console.log(rec ? `RealEstateCore: ${models.length} models` : 'REC_DIR absent: a small set');

  let uploaded = 0;
  for (const b of batches(models)) {
    const created = await owner.createModels(b);
    assertEqual(created.length, b.length, `createModels: a batch of ${b.length}`);
    uploaded += b.length;
  }
  assertEqual(uploaded, models.length, 'every model uploaded');

  const got = await reader.getModel(room, true);
  assertEqual(got.id, room, 'getModel (reader)');
  assertEqual(got.model['@id'], room, 'getModel includes the definition');
  assert(!Number.isNaN(Date.parse(got.uploadTime)), 'uploadTime is a date');
  assertEqual(got.decommissioned, false, 'not decommissioned');
  const bare = await reader.getModel(space);
  assert(bare.model === undefined, 'getModel without the definition');

  let listed = 0;
  for await (const m of reader.listModels(undefined, false, 100)) {
    if (m.id) listed++;
  }
  assertEqual(listed, models.length, 'listModels pages through every model');
  const deps = [];
  for await (const m of reader.listModels([room], true)) deps.push(m.id);
  assert(deps.includes(room) && deps.includes(space), `dependenciesFor ${room}: ${deps.length}`);

  const dup = await rejects(owner.createModels([models[0]]), 'the same model again');
  assertEqual(statusOf(dup), 409, 'a duplicate is 409');
  const written = await rejects(reader.createModels([{ ...SMALL[0], '@id': 'dtmi:conf:Other;1' }]),
    'a reader uploading');
  assertEqual(statusOf(written), 403, 'a reader cannot write');
  const used = await rejects(owner.deleteModel(space), 'deleting a model others extend');
  assertEqual(statusOf(used), 409, 'ModelReferencesNotDeleted is 409');

  await owner.decomissionModel(leaf);
  assertEqual((await reader.getModel(leaf)).decommissioned, true, 'decommissioned');
  await owner.deleteModel(leaf);
  const gone = await rejects(reader.getModel(leaf), 'a deleted model');
  assertEqual(statusOf(gone), 404, 'a deleted model is 404');

  // --- twins and relationships (our own small models, whatever REC holds) ---
  const graphModels = [
    { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Sensor;1', '@type': 'Interface',
      contents: [{ '@type': 'Property', name: 'setpoint', schema: 'double' },
        { '@type': 'Telemetry', name: 'temperature', schema: 'double' }] },
    { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Zone;1', '@type': 'Interface',
      contents: [{ '@type': 'Property', name: 'name', schema: 'string' },
        { '@type': 'Property', name: 'temperature', schema: 'double' },
        { '@type': 'Component', name: 'thermostat', schema: 'dtmi:conf:Sensor;1' }] },
    { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Site;1', '@type': 'Interface',
      contents: [{ '@type': 'Property', name: 'name', schema: 'string' },
        { '@type': 'Relationship', name: 'contains', target: 'dtmi:conf:Zone;1',
          properties: [{ '@type': 'Property', name: 'floor', schema: 'integer' }] }] },
  ];
  await owner.createModels(graphModels);
  const site = await owner.upsertDigitalTwin('site', JSON.stringify({
    $metadata: { $model: 'dtmi:conf:Site;1' }, name: 'HQ' }), { ifNoneMatch: '*' });
  assertEqual(site.body.$dtId, 'site', 'upsertDigitalTwin answers the twin');
  assert(typeof site.etag === 'string' && site.etag.length > 0, 'and its ETag');
  const twice = await rejects(owner.upsertDigitalTwin('site', JSON.stringify({
    $metadata: { $model: 'dtmi:conf:Site;1' } }), { ifNoneMatch: '*' }), 'If-None-Match: * on a twin that exists');
  assertEqual(statusOf(twice), 412, 'is 412');
  const invalid = await rejects(owner.upsertDigitalTwin('bad', JSON.stringify({
    $metadata: { $model: 'dtmi:conf:Zone;1' }, name: 3, thermostat: { $metadata: {} } })), 'a twin its model refuses');
  assertEqual(statusOf(invalid), 400, 'is 400');
  const zones = 2000;
  for (let i = 0; i < zones; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, zones - i) }, (_, k) => {
      const id = `zone-${i + k}`;
      return owner.upsertDigitalTwin(id, JSON.stringify({
        $metadata: { $model: 'dtmi:conf:Zone;1' }, name: id, temperature: 20,
        thermostat: { $metadata: {}, setpoint: 21 } }))
        .then(() => owner.upsertRelationship('site', `contains-${i + k}`, {
          $relationshipName: 'contains', $targetId: id, floor: (i + k) % 5 }));
    }));
  }
  ok(`${zones} zone twins, each contained by the site`);

  const zone = await reader.getDigitalTwin('zone-7');
  assertEqual(zone.body.$metadata.$model, 'dtmi:conf:Zone;1', 'getDigitalTwin');
  assert(zone.body.$metadata.temperature.lastUpdateTime, 'per-property lastUpdateTime');
  const patched = await owner.updateDigitalTwin('zone-7',
    [{ op: 'replace', path: '/temperature', value: 22.5 }], { ifMatch: zone.etag });
  assert(patched.etag && patched.etag !== zone.etag, 'updateDigitalTwin with If-Match: a new ETag');
  assertEqual((await reader.getDigitalTwin('zone-7')).body.temperature, 22.5, 'the patch is there');
  const stale = await rejects(owner.updateDigitalTwin('zone-7',
    [{ op: 'replace', path: '/temperature', value: 1 }], { ifMatch: zone.etag }), 'a stale If-Match');
  assertEqual(statusOf(stale), 412, 'is 412');
  const comp = await reader.getComponent('zone-7', 'thermostat');
  assertEqual(comp.body.setpoint, 21, 'getComponent');
  await owner.updateComponent('zone-7', 'thermostat', [{ op: 'replace', path: '/setpoint', value: 19 }]);
  assertEqual((await reader.getComponent('zone-7', 'thermostat')).body.setpoint, 19, 'updateComponent');

  const rel = await reader.getRelationship('site', 'contains-7');
  assertEqual(rel.body.$targetId, 'zone-7', 'getRelationship');
  let outgoing = 0;
  for await (const r of reader.listRelationships('site', 'contains')) if (r.$relationshipId) outgoing++;
  assertEqual(outgoing, zones, 'listRelationships');
  const incoming = [];
  for await (const r of reader.listIncomingRelationships('zone-7')) incoming.push(r);
  assertEqual(incoming.length, 1, 'listIncomingRelationships');
  assertEqual(incoming[0].sourceId, 'site', 'from the site (the SDK maps $sourceId to sourceId)');
  assertEqual(incoming[0].relationshipLink, '/digitaltwins/site/relationships/contains-7', 'with its link');
  // Queries (POST /query), paged by the SDK through continuationToken.
  const rows = async (q, pageSize) => {
    const out = [];
    for await (const r of reader.queryTwins(q, pageSize)) out.push(r);
    return out;
  };
  const zonesOf = await rows("SELECT * FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:conf:Zone;1')", 50);
  assertEqual(zonesOf.length, zones, 'IS_OF_MODEL, 50 per page');
  assertEqual((await rows('SELECT COUNT() FROM DIGITALTWINS'))[0].COUNT, zones + 1, 'COUNT()');
  const warm = await rows("SELECT Z FROM DIGITALTWINS S JOIN Z RELATED S.contains " +
    "WHERE S.$dtId = 'site' AND Z.temperature > 21");
  assertEqual(warm.map((r) => r.Z.$dtId), ['zone-7'], 'JOIN … RELATED with a property filter');
  const matched = await rows("SELECT z FROM DIGITALTWINS MATCH (s)-[r:contains]->(z) " +
    "WHERE s.$dtId = 'site' AND r.floor = 2");
  assertEqual(matched.length, zones / 5, 'MATCH on a relationship property');
  const top = await rows('SELECT TOP(3) T.$dtId FROM DIGITALTWINS T');
  assertEqual(top.length, 3, 'TOP(3) with a projection');
  await rejects(reader.queryTwins('SELECT * FROM NOWHERE').next(), 'a malformed query');

  // Event routes: the endpoint through Orrery's API, the route through the SDK.
  if (process.env.HOOK_CERT) {
    const hook = await receiver();
    const credential = new ClientSecretCredential(TENANT, process.env.AZURE_CLIENT_ID,
      process.env.AZURE_CLIENT_SECRET, { authorityHost: URL, disableInstanceDiscovery: true });
    const ep = await putEndpoint(credential, 'conf-hook', { endpointType: 'Webhook',
      url: `https://localhost:${hook.port}/hook`, secret: 'conf-secret', maxBatchSize: 10 });
    assertEqual(ep.status, 200, `PUT /endpoints/conf-hook (${ep.body})`);
    const filter = "type = 'Microsoft.DigitalTwins.Twin.Update' OR " +
      "type = 'Microsoft.DigitalTwins.Relationship.Create' OR " +
      "(type = 'microsoft.iot.telemetry' AND ($body.temperature > 25 OR subject = 'thermostat'))";
    await owner.upsertEventRoute('conf-route', 'conf-hook', filter);
    const route = await reader.getEventRoute('conf-route');
    assertEqual(route.filter, filter, 'getEventRoute');
    assertEqual(route.endpointName, 'conf-hook', 'with its endpoint');
    const routes = [];
    for await (const r of reader.listEventRoutes()) routes.push(r.id);
    assert(routes.includes('conf-route'), 'listEventRoutes');
    const noEndpoint = await rejects(owner.upsertEventRoute('r2', 'nowhere', 'true'),
      'a route to an endpoint that does not exist');
    assertEqual(statusOf(noEndpoint), 400, 'is 400');
    await owner.updateDigitalTwin('zone-8', [{ op: 'replace', path: '/temperature', value: 23 }]);
    await owner.upsertRelationship('site', 'contains-extra', {
      $relationshipName: 'contains', $targetId: 'zone-8', floor: 9 });
    await owner.publishTelemetry('zone-8', { temperature: 30 }, 'conf-hot-1');
    await owner.publishTelemetry('zone-8', { temperature: 10 }, 'conf-cool-1');
    // digital-twins-core 1.1.0 passes publishComponentTelemetry's payload and message id to
    // the REST call in swapped order: the body is the message id (a JSON string), and
    // Message-Id the payload. ADT would see the same request; so does Orrery.
    await owner.publishComponentTelemetry('zone-8', 'thermostat', JSON.stringify({ temperature: 26 }),
      'conf-hot-2');
    const find = (pred) => hook.events.find(pred);
    const component = (e) => e.type === 'microsoft.iot.telemetry' && e.subject === 'thermostat';
    await until(() => `the CloudEvents at the receiver (got ${JSON.stringify(hook.events)})`, () => find(component) &&
      find((e) => e.type === 'Microsoft.DigitalTwins.Relationship.Create') &&
      find((e) => e.type === 'Microsoft.DigitalTwins.Twin.Update' && e.subject === 'zone-8'));
    const update = find((e) => e.type === 'Microsoft.DigitalTwins.Twin.Update' && e.subject === 'zone-8');
    assertEqual(update.specversion, '1.0', 'a CloudEvents 1.0 Twin.Update');
    assertEqual(update.data.modelId, 'dtmi:conf:Zone;1', 'with the modelId');
    assertEqual(JSON.stringify(update.data.patch),
      JSON.stringify([{ op: 'replace', path: '/temperature', value: 23 }]), 'and the patch');
    const created = find((e) => e.type === 'Microsoft.DigitalTwins.Relationship.Create');
    assertEqual(created.subject, 'site/relationships/contains-extra', 'Relationship.Create subject');
    assertEqual(created.data.floor, 9, 'and data');
    const hot = find((e) => e.id === 'conf-hot-1');
    assertEqual(hot.type, 'microsoft.iot.telemetry', 'telemetry through the route');
    assertEqual(hot.dataschema, 'dtmi:conf:Zone;1', 'its dataschema is the twin\'s model');
    assert(hot.source.endsWith('/digitaltwins/zone-8'), `its source names the twin (${hot.source})`);
    const comp = find(component);
    assertEqual(comp.dataschema, 'dtmi:conf:Sensor;1', 'component telemetry: the component\'s model');
    assertEqual(comp.data, 'conf-hot-2', 'with the body the SDK sent (its message id: see above)');
    assert(!find((e) => e.id === 'conf-cool-1'), 'the filter kept the cool reading out');
    await owner.deleteEventRoute('conf-route');
    const gone = await rejects(reader.getEventRoute('conf-route'), 'a deleted route');
    assertEqual(statusOf(gone), 404, 'is 404');
    await owner.deleteRelationship('site', 'contains-extra');
    hook.close();
  }

  // Ingestion: a device (azure-iot-device over MQTT) sends telemetry; a mapping rule patches
  // its twin, a propagation rule the zone that contains… here: the site's zone-9 has the sensor.
  if (process.env.HOOK_CERT) {
    const credential = new ClientSecretCredential(TENANT, process.env.AZURE_CLIENT_ID,
      process.env.AZURE_CLIENT_SECRET, { authorityHost: URL, disableInstanceDiscovery: true });
    await owner.createModels([
      { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Thermometer;1', '@type': 'Interface',
        contents: [{ '@type': 'Property', name: 'temperature', schema: 'double' }] },
      { '@context': 'dtmi:dtdl:context;3', '@id': 'dtmi:conf:Office;1', '@type': 'Interface',
        contents: [{ '@type': 'Property', name: 'temperature', schema: 'double' },
          { '@type': 'Relationship', name: 'hasSensor', target: 'dtmi:conf:Thermometer;1' }] }]);
    const deviceId = 'conf-thermo-1';
    await owner.upsertDigitalTwin(deviceId, JSON.stringify({ $metadata: { $model: 'dtmi:conf:Thermometer;1' } }));
    await owner.upsertDigitalTwin('conf-office', JSON.stringify({ $metadata: { $model: 'dtmi:conf:Office;1' } }));
    await owner.upsertRelationship('conf-office', 'has-thermo', { $relationshipName: 'hasSensor', $targetId: deviceId });
    const put = (name, rule) => putEndpoint(credential, name, rule, 'mappings');
    assertEqual((await put('conf-thermo', { source: 'telemetry',
      condition: 'is_defined($body.temperature)', twinId: '{deviceId}',
      patch: { '/temperature': '$body.temperature' } })).status, 200, 'PUT /mappings/conf-thermo');
    assertEqual((await put('conf-office', { source: 'digitalTwinChange',
      condition: "$body.modelId = 'dtmi:conf:Thermometer;1'", relationship: 'hasSensor',
      direction: 'incoming', patch: { '/temperature': '$twin.temperature' } })).status, 200,
    'PUT /mappings/conf-office');
    const dev = await lib.createDevice(registry, deviceId);
    const device = Client.fromConnectionString(lib.deviceConnectionString(dev), Mqtt);
    await device.open();
    const m = new Message(JSON.stringify({ temperature: 24.5 }));
    m.contentType = 'application/json';
    m.contentEncoding = 'utf-8';
    await device.sendEvent(m);
    await device.close();
    const temperatureOf = async (id) => (await reader.getDigitalTwin(id)).body.temperature;
    let twinT; let officeT;
    await until(() => `the twins to follow the telemetry (device twin ${twinT}, office ${officeT})`, () => twinT === 24.5 && officeT === 24.5, 30000,
      async () => { twinT = await temperatureOf(deviceId); officeT = await temperatureOf('conf-office'); });
    ok('device telemetry reached its twin (mapping rule) and the office (propagation rule)');
  }

  const bound = await rejects(owner.deleteDigitalTwin('zone-7'), 'deleting a twin with relationships');
  assertEqual(statusOf(bound), 400, 'RelationshipsNotDeleted is 400');
  await owner.deleteRelationship('site', 'contains-7');
  await owner.deleteDigitalTwin('zone-7');
  const deleted = await rejects(reader.getDigitalTwin('zone-7'), 'a deleted twin');
  assertEqual(statusOf(deleted), 404, 'is 404');

  const stranger = client(process.env.AZURE_CLIENT_ID, 'not-the-secret');
  await rejects(stranger.getModel(space), 'a wrong client secret');
  ok('done');
});
