// Refusals: a wrong key, an expired token, a disabled device and a publish to another
// device's topic are each refused with the right code, and the server keeps serving.
'use strict';

const mqtt = require('mqtt');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { SharedAccessSignature } = require('azure-iot-device');
const common = require('azure-iot-common');
const lib = require('./lib');

function deviceToken(host, deviceId, key, expiry) {
  const sr = common.encodeUriComponentStrict(`${host}/devices/${deviceId}`);
  return common.SharedAccessSignature.create(sr, null, key, expiry).toString();
}

// A raw MQTT 3.1.1 session as the device SDK would open it; resolves with the CONNACK code.
function rawConnect(deviceId, password) {
  return new Promise((resolve) => {
    const c = mqtt.connect(`mqtts://${lib.HOST}:8883`, {
      clientId: deviceId, username: `${lib.HOST}/${deviceId}/?api-version=2021-04-12`, password,
      protocolVersion: 4, clean: false, reconnectPeriod: 0, ca: lib.CA, connectTimeout: 10000,
    });
    c.on('connect', () => resolve({ code: 0, client: c }));
    c.on('error', (e) => { resolve({ code: e.code, error: e }); c.end(true); });
  });
}

lib.run(async ({ registry, prefix }) => {
  const id = `${prefix}-refused`;
  const dev = await lib.createDevice(registry, id);
  const key = dev.authentication.symmetricKey.primaryKey;

  // Wrong key: CONNACK 5 (not authorized); the SDK reports it on open().
  const wrongKey = Buffer.from('x'.repeat(32)).toString('base64');
  const bad = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${id};SharedAccessKey=${wrongKey}`, Mqtt);
  const e1 = await lib.rejects(bad.open(), 'a wrong key is refused');
  lib.assert(/authori/i.test(e1.message) || e1.constructor.name.includes('Unauthorized'), 'as not authorized');
  const raw1 = await rawConnect(id, deviceToken(lib.HOST, id, wrongKey, Math.floor(Date.now() / 1000) + 600));
  lib.assertEqual(raw1.code, 5, 'wrong key: CONNACK return code 5');

  // Expired token.
  const expired = deviceToken(lib.HOST, id, key, Math.floor(Date.now() / 1000) - 60);
  const raw2 = await rawConnect(id, expired);
  lib.assertEqual(raw2.code, 5, 'expired token: CONNACK return code 5');
  const exp = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${id};SharedAccessSignature=${expired}`, Mqtt);
  await lib.rejects(exp.open(), 'an expired SAS token in the connection string is refused');

  // Another device's topic: the connection is closed, nothing reaches the other device.
  const good = await rawConnect(id, deviceToken(lib.HOST, id, key, Math.floor(Date.now() / 1000) + 600));
  lib.assertEqual(good.code, 0, 'the right key connects');
  const closed = new Promise((resolve) => good.client.on('close', resolve));
  good.client.publish(`devices/${prefix}-victim/messages/events/`, 'spoof', { qos: 1 });
  await lib.within(10000, 'connection closed after publishing to another device\'s topic', closed);
  lib.ok('publishing to another device\'s topic closes the connection');
  good.client.end(true);

  // A disabled device is refused, and disabling a connected device disconnects it.
  const live = Client.fromConnectionString(lib.deviceConnectionString(dev), Mqtt);
  await live.open();
  lib.assertEqual((await registry.get(id)).responseBody.connectionState, 'Connected',
    'the device is connected');
  const current = (await registry.get(id)).responseBody;
  await registry.update({ ...current, status: 'disabled' });
  await lib.within(10000, 'disabling disconnects the device', (async () => {
    while ((await registry.get(id)).responseBody.connectionState !== 'Disconnected') {
      await new Promise((r) => setTimeout(r, 100));
    }
  })());
  lib.ok('disabling a connected device disconnects it');
  await live.close().catch(() => {});
  const off = Client.fromConnectionString(lib.deviceConnectionString(dev), Mqtt);
  await lib.rejects(off.open(), 'a disabled device is refused');

  // The server is unaffected: a fresh device works end to end.
  const fine = await lib.createDevice(registry, `${prefix}-after-refusals`);
  const c = Client.fromConnectionString(lib.deviceConnectionString(fine), Mqtt);
  await c.open();
  await c.sendEvent(new Message('still serving'));
  await c.close();
  lib.ok('the server still serves devices after the refusals');
});
