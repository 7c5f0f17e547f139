// The service SDK (azure-iothub): Registry CRUD for devices and modules, bulk add, device
// queries paging through 1,000 devices and filtering on tags, twins, a direct method on an SDK
// device, JobClient twin-update and device-method jobs observed to completion, statistics —
// and each shared access policy refused where it lacks the permission.
'use strict';

const iothub = require('azure-iothub');
const { Client: DeviceClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');

const FLEET = 1000;

async function allPages(query) {
  const rows = [];
  let pages = 0;
  while (query.hasMoreResults) {
    // Callback style: the SDK's promise form of next() ignores the stored continuation token
    // (azure-iothub 1.16.6 query.js), so it would fetch the first page forever.
    const page = await new Promise((resolve, reject) => query.next((err, result) => (err ? reject(err) : resolve(result))));
    rows.push(...page);
    pages += 1;
    if (pages > 2 * FLEET) lib.fail('paging does not end');
  }
  return { rows, pages };
}

async function waitForJob(jobs, jobId) {
  return lib.within(60000, `job ${jobId} to complete`, (async () => {
    for (;;) {
      const j = (await jobs.getJob(jobId)).jobStatus;
      if (['completed', 'failed', 'cancelled'].includes(j.status)) return j;
      await new Promise((r) => setTimeout(r, 200));
    }
  })());
}

lib.run(async ({ registry, client, prefix }) => {
  const p = `${prefix}-svc`;

  // Registry CRUD: devices.
  const created = (await registry.create({ deviceId: `${p}-a`, status: 'enabled' })).responseBody;
  lib.assert(created.authentication.symmetricKey.primaryKey.length === 44, 'create generates keys');
  await lib.rejects(registry.create({ deviceId: `${p}-a` }), 'creating an existing device fails (409)');
  const got = (await registry.get(`${p}-a`)).responseBody;
  lib.assertEqual(got.generationId, created.generationId, 'get returns the device');
  const updated = (await registry.update({ ...got, status: 'disabled', statusReason: 'test' })).responseBody;
  lib.assertEqual([updated.status, updated.statusReason], ['disabled', 'test'], 'update replaces status');
  lib.assert(updated.etag !== got.etag, 'update changes the etag');
  const listed = (await registry.list()).responseBody;
  const total = (await registry.getRegistryStatistics()).responseBody.totalDeviceCount;
  lib.assertEqual(listed.length, Math.min(total, 1000), 'list returns every device, at most 1,000');
  if (total <= 1000) lib.assert(listed.some((d) => d.deviceId === `${p}-a`), 'list includes the device');
  await registry.delete(`${p}-a`);
  const gone = await lib.rejects(registry.get(`${p}-a`), 'a deleted device is gone');
  lib.assert(gone.constructor.name === 'DeviceNotFoundError', `404 maps to DeviceNotFoundError (${gone.constructor.name})`);

  // Modules.
  await registry.create({ deviceId: `${p}-host` });
  await registry.addModule({ deviceId: `${p}-host`, moduleId: 'm1' });
  const mod = (await registry.getModule(`${p}-host`, 'm1')).responseBody;
  lib.assertEqual(mod.moduleId, 'm1', 'getModule');
  await registry.updateModule({ ...mod, managedBy: 'ops' }, true);
  lib.assertEqual((await registry.getModule(`${p}-host`, 'm1')).responseBody.managedBy, 'ops', 'updateModule');
  await registry.removeModule(`${p}-host`, 'm1');
  lib.assertEqual((await registry.getModulesOnDevice(`${p}-host`)).responseBody.length, 0, 'removeModule');

  // Bulk: 1,000 devices, 100 per request.
  for (let i = 0; i < FLEET; i += 100) {
    const batch = [];
    for (let j = i; j < i + 100; j += 1) batch.push({ deviceId: `${p}-f${String(j).padStart(4, '0')}` });
    const r = (await registry.addDevices(batch)).responseBody;
    if (!r.isSuccessful) lib.fail(`bulk add failed: ${JSON.stringify(r.errors.slice(0, 3))}`);
  }
  lib.ok(`bulk-added ${FLEET} devices`);
  const dup = (await registry.addDevices([{ deviceId: `${p}-f0000` }, { deviceId: `${p}-new` }])).responseBody;
  lib.assert(!dup.isSuccessful && dup.errors.length === 1 && dup.errors[0].deviceId === `${p}-f0000`,
    'bulk add reports the one existing device');
  const stats = (await registry.getRegistryStatistics()).responseBody;
  lib.assert(stats.totalDeviceCount >= FLEET, `registry statistics count ${stats.totalDeviceCount} devices`);

  // Tags on every tenth device, then queries.
  for (let j = 0; j < FLEET; j += 10) {
    const id = `${p}-f${String(j).padStart(4, '0')}`;
    await registry.updateTwin(id, { tags: { region: 'west', rank: j } }, '*');
  }
  lib.ok('tagged 100 devices');
  const all = await allPages(registry.createQuery(`SELECT * FROM devices WHERE STARTSWITH(deviceId, '${p}-f')`, 100));
  lib.assertEqual(all.rows.length, FLEET, 'a query pages through all 1,000 devices');
  lib.assert(all.pages >= 10, `in ${all.pages} pages of at most 100`);
  lib.assertEqual(new Set(all.rows.map((r) => r.deviceId)).size, FLEET, 'every device exactly once');
  const west = await allPages(registry.createQuery(
    `SELECT * FROM devices WHERE tags.region = 'west' AND STARTSWITH(deviceId, '${p}-')`, 30));
  lib.assertEqual(west.rows.length, 100, 'a tag filter selects the tagged devices');
  lib.assert(west.rows.every((r) => r.tags.region === 'west'), 'only tagged devices match');
  const twinsQuery = registry.createQuery(`SELECT * FROM devices WHERE tags.rank >= 990 AND STARTSWITH(deviceId, '${p}-')`);
  const asTwins = await twinsQuery.nextAsTwin();
  lib.assertEqual(asTwins.result.map((t) => t.deviceId), [`${p}-f0990`], 'nextAsTwin wraps rows as twins');
  const counted = await allPages(registry.createQuery(
    `SELECT tags.region AS region, COUNT() AS n FROM devices WHERE STARTSWITH(deviceId, '${p}-f') GROUP BY tags.region`));
  const byRegion = Object.fromEntries(counted.rows.map((r) => [r.region === undefined ? '(none)' : r.region, r.n]));
  lib.assertEqual(byRegion, { west: 100, '(none)': 900 }, 'GROUP BY with COUNT()');
  const projected = await allPages(registry.createQuery(
    `SELECT TOP 5 deviceId, tags.rank AS rank FROM devices WHERE tags.region = 'west' AND STARTSWITH(deviceId, '${p}-')`, 2));
  lib.assertEqual(projected.rows.length, 5, 'TOP limits the rows across pages');
  lib.assert(projected.rows.every((r) => Object.keys(r).sort().join() === 'deviceId,rank'), 'projections');
  await lib.rejects(registry.createQuery('SELEKT * FROM devices').next(), 'a malformed query is refused (400)');

  // Twins and a direct method on an SDK device.
  const devId = `${p}-f0001`;
  const dev = (await registry.get(devId)).responseBody;
  const device = DeviceClient.fromConnectionString(lib.deviceConnectionString(dev), Mqtt);
  await device.open();
  device.onDeviceMethod('identify', (req, res) => res.send(200, { blink: req.payload.times }, () => {}));
  const twin = (await registry.getTwin(devId)).responseBody;
  const patched = (await registry.updateTwin(devId, { properties: { desired: { level: 4 } } }, twin.etag)).responseBody;
  lib.assertEqual(patched.properties.desired.level, 4, 'updateTwin with the etag');
  await lib.rejects(registry.updateTwin(devId, { tags: { x: 1 } }, twin.etag), 'a stale etag is refused (412)');
  const m = await client.invokeDeviceMethod(devId, { methodName: 'identify', payload: { times: 3 }, responseTimeoutInSeconds: 10 });
  lib.assertEqual(m.result, { status: 200, payload: { blink: 3 } }, 'invokeDeviceMethod');
  const offline = await lib.rejects(client.invokeDeviceMethod(`${p}-f0002`, { methodName: 'identify', responseTimeoutInSeconds: 5 }),
    'a method on an offline device is refused');
  lib.assert(/not found|DeviceNotOnline/i.test(offline.message), 'as 404 (not retried)');

  // Jobs: a twin update over the tagged devices, a device method over the connected one.
  const jobs = iothub.JobClient.fromConnectionString(process.env.SERVICE_CS);
  const twinJob = `${p}-job-twin`;
  await jobs.scheduleTwinUpdate(twinJob, `tags.region = 'west' AND STARTSWITH(deviceId, '${p}-f')`,
    { etag: '*', properties: { desired: { firmware: '2.0' } } }, new Date(), 120);
  const tj = await waitForJob(jobs, twinJob);
  lib.assertEqual([tj.status, tj.deviceJobStatistics.deviceCount, tj.deviceJobStatistics.succeededCount],
    ['completed', 100, 100], 'scheduleTwinUpdate completes over 100 devices');
  const check = (await registry.getTwin(`${p}-f0990`)).responseBody;
  lib.assertEqual(check.properties.desired.firmware, '2.0', 'the job updated the twins');
  const methodJob = `${p}-job-method`;
  await jobs.scheduleDeviceMethod(methodJob, `deviceId = '${devId}'`,
    { methodName: 'identify', payload: { times: 1 }, responseTimeoutInSeconds: 10 });
  const mj = await waitForJob(jobs, methodJob);
  lib.assertEqual([mj.status, mj.deviceJobStatistics.succeededCount], ['completed', 1], 'scheduleDeviceMethod completes');
  const results = await allPages(registry.createQuery(`SELECT * FROM devices.jobs WHERE devices.jobs.jobId = '${methodJob}'`));
  lib.assertEqual(results.rows.map((r) => [r.deviceId, r.status, r.outcome.deviceMethodResponse.status]),
    [[devId, 'completed', 200]], 'per-device job results in devices.jobs');
  const listedJobs = await allPages(jobs.createQuery('scheduleUpdateTwin', 'completed'));
  lib.assert(listedJobs.rows.some((j) => j.jobId === twinJob), 'job query by type and status');
  await lib.rejects(jobs.cancelJob(twinJob), 'a completed job cannot be cancelled');
  await device.close();

  // Least privilege: each policy is refused where it lacks the permission.
  const cs = (name) => process.env[`POLICY_CS_${name}`];
  const readOnly = iothub.Registry.fromConnectionString(cs('registryRead'));
  lib.assert((await readOnly.get(devId)).responseBody.deviceId === devId, 'registryRead reads the registry');
  const e1 = await lib.rejects(readOnly.create({ deviceId: `${p}-nope` }), 'registryRead cannot create devices');
  lib.assert(e1.response && e1.response.statusCode === 403, 'with 403');
  const serviceOnly = iothub.Registry.fromConnectionString(cs('service'));
  await lib.rejects(serviceOnly.list(), 'service cannot list the registry');
  lib.assert((await serviceOnly.getTwin(devId)).responseBody.deviceId === devId, 'service reads twins');
  const rw = iothub.Client.fromConnectionString(cs('registryReadWrite'));
  const e2 = await lib.rejects(rw.invokeDeviceMethod(devId, { methodName: 'identify', responseTimeoutInSeconds: 5 }),
    'registryReadWrite cannot invoke methods');
  lib.assert(e2.response && e2.response.statusCode === 403, 'with 403');
  await lib.rejects(iothub.Registry.fromConnectionString(cs('device')).get(devId), 'the device policy cannot use the service API');
  const forged = lib.parseCs(process.env.SERVICE_CS);
  const wrongKey = iothub.Registry.fromConnectionString(
    `HostName=${forged.HostName};SharedAccessKeyName=iothubowner;SharedAccessKey=${Buffer.alloc(32).toString('base64')}`);
  const e3 = await lib.rejects(wrongKey.get(devId), 'a wrong key is refused');
  lib.assert(e3.response && e3.response.statusCode === 401, 'with 401');
  const expiredSas = iothub.SharedAccessSignature.create(forged.HostName, 'iothubowner', forged.SharedAccessKey,
    Math.floor(Date.now() / 1000) - 10).toString();
  const expired = iothub.Registry.fromSharedAccessSignature(expiredSas);
  const e4 = await lib.rejects(expired.get(devId), 'an expired service token is refused');
  lib.assert(e4.response && e4.response.statusCode === 401, 'with 401');
});
