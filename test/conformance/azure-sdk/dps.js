// The Device Provisioning Service through the unmodified Azure DPS SDKs: enrollments and
// enrollment groups managed with azure-iot-provisioning-service (etags, paged queries, bulk,
// attestation mechanisms, each policy's permissions), devices registering over MQTT and HTTPS
// with group-derived and individual symmetric keys and with X.509 certificates (individual and
// CA-signed group members), then connecting to the hub they were assigned with the same
// credentials — initial twin applied, telemetry flowing — and the refusals (disabled
// enrollment, wrong key, unknown registration id, a certificate for another registration id).
//
// Environment (test/conformance/azure_sdk_test.cc, besides lib.js's):
//   DPS_CS, DPS_CS_ENROLLMENTREAD, DPS_CS_ENROLLMENTWRITE   DPS policy connection strings
//   DPS_ID_SCOPE                                              the ID scope
//   DPS_X509_CERT, DPS_X509_KEY        self-signed client certificate, CN = <prefix>-dps-x509
//   DPS_X509_GROUP_CA                  a root CA (signing certificate of an X.509 group)
//   DPS_X509_GROUP_CERT, _KEY          a leaf it issued, CN = <prefix>-dps-x509g
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt: DeviceMqtt } = require('azure-iot-device-mqtt');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvMqtt, MqttWs: ProvMqttWs } = require('azure-iot-provisioning-device-mqtt');
const { Http: ProvHttp } = require('azure-iot-provisioning-device-http');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { X509Security } = require('azure-iot-security-x509');
const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const lib = require('./lib');

const env = (name) => {
  const v = process.env[name];
  if (!v) lib.fail(`${name} is not set (run through azure_sdk_test)`);
  return v;
};
const PROVISIONING_HOST = 'localhost';  // MQTT 8883 and HTTPS 443, shared with the hub
const T = 20000;                         // bound for one service call or hub operation
const REGISTER_MS = 45000;               // one registration (the SDK's own per-request timeout is 30 s)

const thumb = (pem, alg) => new crypto.X509Certificate(pem)[alg === 'sha1' ? 'fingerprint' : 'fingerprint256']
  .replace(/:/g, '').toUpperCase();
const deriveKey = (groupKey, registrationId) => crypto
  .createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId, 'utf8').digest('base64');
const randomKey = () => crypto.randomBytes(32).toString('base64');
const symmetric = (primaryKey = '', secondaryKey = '') => (
  { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey } });
const quiet = (p) => p.then(() => {}, () => {});  // cleanup of what may not exist

// Registers through the device SDK: resolves with the registrationState.
function register(transport, security, what, payload) {
  const client = ProvisioningDeviceClient.create(PROVISIONING_HOST, env('DPS_ID_SCOPE'), transport, security);
  if (payload) client.setProvisioningPayload(payload);
  return lib.within(REGISTER_MS, what, client.register());
}
const symmetricRegister = (Transport, registrationId, key, what, payload) => register(
  new Transport(), new SymmetricKeySecurityClient(registrationId, key), what, payload);
const x509Register = (Transport, registrationId, cert, key, what) => register(
  new Transport(), new X509Security(registrationId, { cert, key }), what);

function checkAssigned(state, registrationId, deviceId, what) {
  lib.assert(state && typeof state === 'object', `${what}: a registration state`);
  lib.assertEqual([state.status, state.assignedHub, state.deviceId, state.registrationId],
    ['assigned', lib.HOST, deviceId, registrationId], `${what}: assigned to ${lib.HOST} as ${deviceId}`);
}

// Connects to the assigned hub as the provisioned device, sends one telemetry message; returns
// the open client (the caller closes it).
async function connectAndSend(state, auth, messageId, props) {
  const base = `HostName=${state.assignedHub};DeviceId=${state.deviceId}`;
  const device = auth.key
    ? Client.fromConnectionString(`${base};SharedAccessKey=${auth.key}`, DeviceMqtt)
    : Client.fromConnectionString(`${base};x509=true`, DeviceMqtt);
  if (auth.cert) await device.setOptions({ cert: auth.cert, key: auth.certKey });
  await lib.within(T, `${state.deviceId} connects to ${state.assignedHub}`, device.open());
  lib.ok(`${state.deviceId} connected to its assigned hub (${auth.key ? 'SAS' : 'X.509'})`);
  const m = new Message(JSON.stringify({ provisioned: true, device: state.deviceId }));
  m.messageId = messageId;
  for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
  await lib.within(T, `${state.deviceId} telemetry`, device.sendEvent(m));
  lib.ok(`${state.deviceId} telemetry acknowledged (${messageId})`);
  return device;
}
const closeDevice = (device) => lib.within(T, 'device close', device.close()).catch(() => {});

async function expectStatus(promise, status, what) {
  return lib.refused(promise, what, { ms: T, statuses: [status] });
}

lib.run(async ({ registry, prefix }) => {
  const dps = ProvisioningServiceClient.fromConnectionString(env('DPS_CS'));
  const call = (what, promise) => lib.within(T, what, promise).then((r) => r.responseBody);

  const grpId = `${prefix}-grp`;
  const x509GrpId = `${prefix}-grp-x509`;
  const indId = `${prefix}-dps-ind`;
  const indDevice = `${prefix}-dps-ind-dev`;
  const x509Id = `${prefix}-dps-x509`;
  const x509gId = `${prefix}-dps-x509g`;
  const offId = `${prefix}-dps-off`;
  const g1 = `${prefix}-dps-g1`;
  const bulkIds = [1, 2, 3].map((i) => `${prefix}-dps-bulk${i}`);

  const x509Cert = fs.readFileSync(env('DPS_X509_CERT'), 'utf8');
  const x509Key = fs.readFileSync(env('DPS_X509_KEY'), 'utf8');
  const groupCa = fs.readFileSync(env('DPS_X509_GROUP_CA'), 'utf8');
  const groupCert = fs.readFileSync(env('DPS_X509_GROUP_CERT'), 'utf8');
  const groupKey = fs.readFileSync(env('DPS_X509_GROUP_KEY'), 'utf8');

  // A clean slate (a re-run on the same data directory).
  for (const id of [indId, x509Id, offId, `${prefix}-dps-w`, `${prefix}-dps-r`, ...bulkIds]) {
    await quiet(lib.within(T, 'cleanup', dps.deleteIndividualEnrollment(id)));
  }
  for (const id of [grpId, x509GrpId]) await quiet(lib.within(T, 'cleanup', dps.deleteEnrollmentGroup(id)));
  for (const id of [g1, indId, x509Id, x509gId]) {
    await quiet(lib.within(T, 'cleanup', dps.deleteDeviceRegistrationState(id)));
  }
  for (const id of [g1, indDevice, x509Id, x509gId]) await quiet(lib.within(T, 'cleanup', registry.delete(id)));

  // 1. Enrollments and groups: create, read back, update with the etag.
  const initialTwin = { tags: { fleet: 'A' }, properties: { desired: { interval: 5 } } };
  const grp = await call('create the symmetric-key group', dps.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: grpId, attestation: symmetric(), provisioningStatus: 'enabled',
    initialTwin, capabilities: { iotEdge: false },
  }));
  lib.assert(grp && grp.enrollmentGroupId === grpId && typeof grp.etag === 'string' && grp.etag.length > 0,
    'createOrUpdateEnrollmentGroup returns the group with an etag');
  const grpAtt = await call('group attestation mechanism', dps.getEnrollmentGroupAttestationMechanism(grpId));
  const grpKeys = grpAtt && grpAtt.symmetricKey;
  lib.assert(grpAtt && grpAtt.type === 'symmetricKey' && grpKeys &&
    Buffer.from(grpKeys.primaryKey || '', 'base64').length >= 16 &&
    Buffer.from(grpKeys.secondaryKey || '', 'base64').length >= 16 && grpKeys.primaryKey !== grpKeys.secondaryKey,
  'empty group keys are generated; getEnrollmentGroupAttestationMechanism returns them');
  const gotGrp = await call('get the group', dps.getEnrollmentGroup(grpId));
  lib.assertEqual([gotGrp.enrollmentGroupId, gotGrp.provisioningStatus, gotGrp.etag, gotGrp.attestation.type],
    [grpId, 'enabled', grp.etag, 'symmetricKey'], 'getEnrollmentGroup returns the group and its etag');
  lib.assertEqual([gotGrp.initialTwin.tags.fleet, gotGrp.initialTwin.properties.desired.interval], ['A', 5],
    'the group keeps its initial twin');
  lib.assert(!gotGrp.capabilities || gotGrp.capabilities.iotEdge === false, 'the group is not for IoT Edge');

  const ind = await call('create the individual enrollment', dps.createOrUpdateIndividualEnrollment({
    registrationId: indId, deviceId: indDevice, attestation: symmetric(), provisioningStatus: 'enabled',
    initialTwin: { tags: { site: 'B' }, properties: { desired: {} } },
  }));
  lib.assert(ind && ind.registrationId === indId && typeof ind.etag === 'string' && ind.etag.length > 0,
    'createOrUpdateIndividualEnrollment returns the enrollment with an etag');
  const indAtt = await call('individual attestation', dps.getIndividualEnrollmentAttestationMechanism(indId));
  lib.assert(indAtt && indAtt.type === 'symmetricKey' &&
    Buffer.from(indAtt.symmetricKey.primaryKey || '', 'base64').length >= 16,
  'empty individual keys are generated; getIndividualEnrollmentAttestationMechanism returns them');
  const gotInd = await call('get the individual enrollment', dps.getIndividualEnrollment(indId));
  lib.assertEqual([gotInd.registrationId, gotInd.deviceId, gotInd.provisioningStatus, gotInd.etag,
    gotInd.initialTwin.tags.site], [indId, indDevice, 'enabled', ind.etag, 'B'],
  'getIndividualEnrollment returns deviceId, status, etag and initial twin');

  const x509 = await call('create the X.509 enrollment', dps.createOrUpdateIndividualEnrollment({
    registrationId: x509Id, provisioningStatus: 'enabled',
    attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: x509Cert } } } },
  }));
  lib.assert(x509 && typeof x509.etag === 'string', 'an individual X.509 enrollment is created');
  const gotX509 = await call('get the X.509 enrollment', dps.getIndividualEnrollment(x509Id));
  const x509Info = gotX509.attestation.x509.clientCertificates.primary.info || {};
  lib.assertEqual([gotX509.attestation.type, String(x509Info.sha1Thumbprint).toUpperCase(),
    String(x509Info.sha256Thumbprint).toUpperCase()], ['x509', thumb(x509Cert, 'sha1'), thumb(x509Cert, 'sha256')],
  'the X.509 enrollment reports the certificate\'s thumbprints');

  const x509Grp = await call('create the X.509 group', dps.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: x509GrpId, provisioningStatus: 'enabled',
    attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: groupCa } } } },
  }));
  lib.assert(x509Grp && typeof x509Grp.etag === 'string', 'an X.509 enrollment group is created');
  const gotX509Grp = await call('get the X.509 group', dps.getEnrollmentGroup(x509GrpId));
  const caInfo = gotX509Grp.attestation.x509.signingCertificates.primary.info || {};
  lib.assertEqual(String(caInfo.sha256Thumbprint).toUpperCase(), thumb(groupCa, 'sha256'),
    'the X.509 group reports its signing certificate');

  const off = await call('create the disabled enrollment', dps.createOrUpdateIndividualEnrollment({
    registrationId: offId, attestation: symmetric(), provisioningStatus: 'disabled',
  }));
  lib.assertEqual(off.provisioningStatus, 'disabled', 'a disabled enrollment is created');
  const offKeys = (await call('disabled attestation', dps.getIndividualEnrollmentAttestationMechanism(offId))).symmetricKey;

  // Update with the etag: the object as read, changed, written back.
  const before = await call('get for update', dps.getIndividualEnrollment(offId));
  const updated = await call('update with the etag', dps.createOrUpdateIndividualEnrollment({
    ...before, initialTwin: { tags: { site: 'C' }, properties: { desired: {} } },
  }));
  lib.assert(updated.etag && updated.etag !== before.etag, 'an update with the current etag changes the etag');
  const after = await call('get after update', dps.getIndividualEnrollment(offId));
  lib.assertEqual([after.initialTwin.tags.site, after.provisioningStatus, after.etag], ['C', 'disabled', updated.etag],
    'the update is stored (and keeps what it did not change)');
  const offKeys2 = (await call('attestation after update', dps.getIndividualEnrollmentAttestationMechanism(offId))).symmetricKey;
  lib.assertEqual(offKeys2.primaryKey, offKeys.primaryKey, 'writing back the object as read keeps the keys');
  const stale = { ...before, initialTwin: { tags: { site: 'D' }, properties: { desired: {} } } };
  await expectStatus(dps.createOrUpdateIndividualEnrollment(stale), 412, 'an update with a stale etag is refused');
  await expectStatus(dps.deleteIndividualEnrollment(offId, before.etag), 412, 'a delete with a stale etag is refused');
  await expectStatus(dps.getIndividualEnrollment(`${prefix}-dps-none`), 404, 'an unknown enrollment is not found');

  // 2. Queries: individual enrollments two per page, then groups.
  const indQuery = await lib.allPages(dps.createIndividualEnrollmentQuery({ query: '*' }, 2));
  const seen = indQuery.rows.map((r) => r.registrationId);
  lib.assert([indId, x509Id, offId].every((id) => seen.includes(id)), `the enrollment query lists every enrollment (${seen.length})`);
  lib.assert(indQuery.pages >= 2 && indQuery.sizes.every((n) => n <= 2),
    `in ${indQuery.pages} pages of at most 2 (${indQuery.sizes.join(',')}), continued by x-ms-continuation`);
  lib.assertEqual(new Set(seen).size, seen.length, 'each enrollment once');
  const grpQuery = await lib.allPages(dps.createEnrollmentGroupQuery({ query: '*' }));
  const groups = grpQuery.rows.map((r) => r.enrollmentGroupId);
  lib.assert(groups.includes(grpId) && groups.includes(x509GrpId), 'the group query lists both groups');

  // 3. Bulk: create three, refuse a duplicate create, delete them. (Callback form: the promise
  // form of runBulkEnrollmentOperation never settles in 1.11.2.)
  const bulk = (op) => lib.within(T, `bulk ${op.mode}`, new Promise((resolve, reject) => dps.runBulkEnrollmentOperation(
    op, (err, result) => (err ? reject(err) : resolve(result)))));
  const bulkEnrollments = bulkIds.map((registrationId) => ({
    registrationId, attestation: symmetric(randomKey(), randomKey()), provisioningStatus: 'enabled',
  }));
  const created = await bulk({ mode: 'create', enrollments: bulkEnrollments });
  lib.assert(created && created.isSuccessful === true, `bulk create of 3 succeeds (${JSON.stringify(created)})`);
  lib.assertEqual((await call('get a bulk-created enrollment', dps.getIndividualEnrollment(bulkIds[1]))).registrationId,
    bulkIds[1], 'a bulk-created enrollment can be read');
  const dup = await bulk({ mode: 'create', enrollments: [bulkEnrollments[0]] });
  lib.assert(dup && dup.isSuccessful === false && Array.isArray(dup.errors) &&
    dup.errors.some((e) => e.registrationId === bulkIds[0]), 'bulk create of an existing enrollment reports it');
  const deleted = await bulk({ mode: 'delete', enrollments: bulkEnrollments });
  lib.assert(deleted && deleted.isSuccessful === true, 'bulk delete of 3 succeeds');
  await expectStatus(dps.getIndividualEnrollment(bulkIds[2]), 404, 'a bulk-deleted enrollment is gone');

  // 4. A group member over MQTT with the derived key, custom payload; then the hub.
  const g1Key = deriveKey(grpKeys.primaryKey, g1);
  const g1State = await symmetricRegister(ProvMqtt, g1, g1Key, `${g1} registers over MQTT`, { hello: 'world' });
  checkAssigned(g1State, g1, g1, `${g1} over MQTT with a group-derived key`);
  const g1Dev = await connectAndSend(g1State, { key: g1Key }, `${g1}-m1`, { dps: 'group' });
  const g1Twin = await lib.within(T, 'device twin', g1Dev.getTwin());
  lib.assertEqual(g1Twin.properties.desired.interval, 5, 'the group\'s initial desired properties reach the device');
  await closeDevice(g1Dev);
  const g1Svc = (await lib.within(T, 'service twin', registry.getTwin(g1))).responseBody;
  lib.assertEqual([g1Svc.tags && g1Svc.tags.fleet, g1Svc.properties.desired.interval], ['A', 5],
    'the hub twin has the group\'s initial tags and desired properties');
  const g1Hub = (await lib.within(T, 'hub device', registry.get(g1))).responseBody;
  lib.assert(g1Hub.authentication.type === 'sas' && g1Hub.authentication.symmetricKey.primaryKey === g1Key,
    'the hub device was created with the derived key');

  // 4b. Another member over MQTT over WebSockets (wss on 443, /$iothub/websocket).
  const g3 = `${prefix}-dps-g3`;
  const g3State = await symmetricRegister(ProvMqttWs, g3, deriveKey(grpKeys.primaryKey, g3),
    `${g3} registers over MQTT/WebSockets`);
  checkAssigned(g3State, g3, g3, `${g3} over MQTT/WebSockets with a group-derived key`);

  // 5. The individual enrollment over HTTPS; the enrollment's device id.
  const indState = await symmetricRegister(ProvHttp, indId, indAtt.symmetricKey.primaryKey, `${indId} registers over HTTPS`);
  checkAssigned(indState, indId, indDevice, `${indId} over HTTPS with its own key`);
  const indDev = await connectAndSend(indState, { key: indAtt.symmetricKey.primaryKey }, `${indDevice}-m1`, { dps: 'individual' });
  await closeDevice(indDev);
  const indSvc = (await lib.within(T, 'service twin', registry.getTwin(indDevice))).responseBody;
  lib.assertEqual(indSvc.tags && indSvc.tags.site, 'B', 'the enrollment\'s initial tags are on the hub twin');

  // 6. X.509: the individual certificate over MQTT, the CA-signed group member over HTTPS.
  const x509State = await x509Register(ProvMqtt, x509Id, x509Cert, x509Key, `${x509Id} registers over MQTT`);
  checkAssigned(x509State, x509Id, x509Id, `${x509Id} over MQTT with its certificate`);
  const x509Dev = await connectAndSend(x509State, { cert: x509Cert, certKey: x509Key }, `${x509Id}-m1`, { dps: 'x509' });
  await closeDevice(x509Dev);
  const x509gState = await x509Register(ProvHttp, x509gId, groupCert, groupKey, `${x509gId} registers over HTTPS`);
  checkAssigned(x509gState, x509gId, x509gId, `${x509gId} over HTTPS with a CA-signed certificate`);
  const x509gDev = await connectAndSend(x509gState, { cert: groupCert, certKey: groupKey }, `${x509gId}-m1`, { dps: 'x509-group' });
  await closeDevice(x509gDev);
  const x509gHub = (await lib.within(T, 'hub device', registry.get(x509gId))).responseBody;
  lib.ok(`the group member's hub identity authenticates as ${x509gHub.authentication.type}`);

  // 7. Refusals (strict: an answer, not a timeout).
  await lib.refused(symmetricRegister(ProvMqtt, offId, offKeys.primaryKey, 'disabled'),
    'a disabled enrollment cannot register');
  const bad = `${prefix}-dps-g2`;
  await lib.refused(symmetricRegister(ProvMqtt, bad, deriveKey(randomKey(), bad), 'wrong key, MQTT'),
    'a wrong key is refused over MQTT', { statuses: [undefined, 401] });
  await lib.refused(symmetricRegister(ProvHttp, bad, deriveKey(randomKey(), bad), 'wrong key, HTTPS'),
    'a wrong key is refused over HTTPS', { statuses: [401] });
  await lib.refused(symmetricRegister(ProvHttp, indId, randomKey(), 'wrong individual key, HTTPS'),
    'a wrong individual key is refused over HTTPS', { statuses: [401] });
  const nobody = `${prefix}-dps-nobody`;  // also not a group member: no group matches without a key
  await lib.refused(symmetricRegister(ProvHttp, nobody, randomKey(), 'unknown, HTTPS'),
    'an unknown registration id is refused over HTTPS', { statuses: [401, 404] });
  await lib.refused(symmetricRegister(ProvMqtt, nobody, randomKey(), 'unknown, MQTT'),
    'an unknown registration id is refused over MQTT', { statuses: [undefined, 401, 404] });
  await lib.refused(x509Register(ProvMqtt, `${prefix}-dps-x509-other`, x509Cert, x509Key, 'certificate, other id'),
    'a certificate does not register another registration id');

  // 8. Registration states, the group's registration query, and the policies.
  const g1Reg = await call('registration state', dps.getDeviceRegistrationState(g1));
  lib.assertEqual([g1Reg.registrationId, g1Reg.status, g1Reg.assignedHub, g1Reg.deviceId],
    [g1, 'assigned', lib.HOST, g1], 'getDeviceRegistrationState shows the assignment');
  lib.assert(typeof g1Reg.etag === 'string' && g1Reg.etag.length > 0, 'the registration state has an etag');
  const regs = await lib.allPages(dps.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, grpId));
  lib.assert(regs.rows.some((r) => r.registrationId === g1 && r.status === 'assigned'),
    'the group\'s registration-state query lists its member');
  lib.assert(!regs.rows.some((r) => r.registrationId === indId || r.registrationId === x509gId),
    'and only its members');
  const x509Regs = await lib.allPages(dps.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, x509GrpId));
  lib.assert(x509Regs.rows.some((r) => r.registrationId === x509gId), 'the X.509 group lists its member');

  const reader = ProvisioningServiceClient.fromConnectionString(env('DPS_CS_ENROLLMENTREAD'));
  lib.assertEqual((await call('enrollmentread get', reader.getIndividualEnrollment(indId))).registrationId, indId,
    'enrollmentread reads enrollments');
  await expectStatus(reader.createOrUpdateIndividualEnrollment({ registrationId: `${prefix}-dps-r`, attestation: symmetric() }),
    403, 'enrollmentread cannot create enrollments');
  const writer = ProvisioningServiceClient.fromConnectionString(env('DPS_CS_ENROLLMENTWRITE'));
  const w = await call('enrollmentwrite create', writer.createOrUpdateIndividualEnrollment({
    registrationId: `${prefix}-dps-w`, attestation: symmetric(),
  }));
  lib.assertEqual(w.registrationId, `${prefix}-dps-w`, 'enrollmentwrite creates enrollments');
  await lib.within(T, 'enrollmentwrite delete', writer.deleteIndividualEnrollment(`${prefix}-dps-w`));
  lib.ok('enrollmentwrite deletes enrollments');
  const cs = lib.parseCs(env('DPS_CS'));
  const forged = ProvisioningServiceClient.fromConnectionString(
    `HostName=${cs.HostName};SharedAccessKeyName=${cs.SharedAccessKeyName};SharedAccessKey=${randomKey()}`);
  await expectStatus(forged.getIndividualEnrollment(indId), 401, 'a wrong policy key is refused');

  // 9. Re-registration keeps the assignment — over MQTT while the device is connected to the
  // hub (the provisioning connection uses the registration id as its MQTT client id, like the
  // device's: it must not take over the device's session), then over HTTPS; cleanup.
  const live = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${g1};SharedAccessKey=${g1Key}`, DeviceMqtt);
  await lib.within(T, `${g1} connects`, live.open());
  let dropped = 0;
  live.on('disconnect', () => { dropped += 1; });
  const again = await symmetricRegister(ProvMqtt, g1, g1Key, `${g1} registers again over MQTT`);
  checkAssigned(again, g1, g1, `${g1} re-registered over MQTT: same hub and device`);
  const liveTwin = await lib.within(T, 'twin after re-registration', live.getTwin());
  lib.assertEqual([dropped, liveTwin.properties.desired.interval], [0, 5],
    'the connected device kept its hub session through the provisioning connection');
  await closeDevice(live);
  const again2 = await symmetricRegister(ProvHttp, g1, g1Key, `${g1} registers again over HTTPS`);
  checkAssigned(again2, g1, g1, `${g1} re-registered over HTTPS: same hub and device`);
  await lib.within(T, 'delete registration state', dps.deleteDeviceRegistrationState(g1));
  lib.ok('deleteDeviceRegistrationState');
  await expectStatus(dps.getDeviceRegistrationState(g1), 404, 'a deleted registration state is gone');
  for (const id of [indId, x509Id, offId]) {
    await lib.within(T, `delete ${id}`, dps.deleteIndividualEnrollment(id));
  }
  lib.ok('individual enrollments deleted');
  await expectStatus(dps.getIndividualEnrollment(indId), 404, 'a deleted enrollment is gone');
  for (const id of [grpId, x509GrpId]) await lib.within(T, `delete ${id}`, dps.deleteEnrollmentGroup(id));
  lib.ok('enrollment groups deleted');
  await expectStatus(dps.getEnrollmentGroup(grpId), 404, 'a deleted group is gone');
});
