// A device with a connection string over MQTT (or, with --ws, MQTT over WebSockets on
// 443/$iothub/websocket): telemetry with properties, twin GET, reported and desired
// properties, a direct method, a cloud-to-device message with feedback, and — over TLS —
// twin and methods still working after the SDK renewed its SAS token (it reconnects without
// re-subscribing, so this needs the persistent session).
'use strict';

const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const lib = require('./lib');

const ws = process.argv.includes('--ws');

lib.run(async ({ registry, client, prefix }) => {
  const id = `${prefix}-${ws ? 'ws' : 'mqtt'}-dev`;
  const dev = await lib.createDevice(registry, id);
  const device = Client.fromConnectionString(lib.deviceConnectionString(dev), ws ? MqttWs : Mqtt);
  let renewals = 0;
  if (!ws) {
    // A token valid 14 s, renewed 10 s before expiry: a reconnect every ~4 s.
    await device.setOptions({ tokenRenewal: { tokenValidTimeInSeconds: 14, tokenRenewalMarginInSeconds: 10 } });
    device._transport._authenticationProvider.on('newTokenAvailable', () => { renewals += 1; });
  }
  await device.open();
  lib.ok(`device ${id} connected over ${ws ? 'MQTT/WebSockets' : 'MQTT/TLS'}`);

  // Telemetry with system and application properties (checked on the event log by the driver).
  const m = new Message(JSON.stringify({ temperature: 21.5, seq: 1 }));
  m.messageId = `${id}-m1`;
  m.correlationId = 'corr 1';
  m.userId = 'user-1';
  m.contentType = 'application/json';
  m.contentEncoding = 'utf-8';
  m.properties.add('alert', 'yes&no');
  m.properties.add('city', 'Zürich');
  await device.sendEvent(m);
  lib.ok('telemetry with properties acknowledged');

  // Twin GET, then a reported patch visible through the service API.
  const twin = await device.getTwin();
  lib.assert(twin.properties.desired.$version >= 1, 'twin GET returns desired with $version');
  const deltas = [];
  twin.on('properties.desired', (delta) => deltas.push(delta));
  await new Promise((resolve, reject) => twin.properties.reported.update(
    { firmware: { version: '1.2.3' }, battery: 87 }, (e) => (e ? reject(e) : resolve())));
  lib.ok('reported patch acknowledged');
  const svcTwin = (await registry.getTwin(id)).responseBody;
  lib.assertEqual(svcTwin.properties.reported.firmware, { version: '1.2.3' },
    'reported properties visible in the service twin');
  lib.assert(svcTwin.properties.reported.$metadata.battery.$lastUpdated !== undefined,
    'reported leaf has $metadata.$lastUpdated');

  // Desired patch from the service reaches the device's callback (the listener was attached
  // before the reported patch, so the SDK's SUBSCRIBE was processed before it).
  const desiredSeen = (want) => lib.within(10000, `desired ${JSON.stringify(want)} at the device`,
    new Promise((resolve) => {
      const check = () => {
        const hit = deltas.find((d) => JSON.stringify(d).includes(JSON.stringify(want).slice(1, -1)));
        if (hit) { clearInterval(timer); resolve(hit); }
      };
      const timer = setInterval(check, 50);
      check();
    }));
  let seen = desiredSeen({ interval: 30 });
  await registry.updateTwin(id, { properties: { desired: { interval: 30 } } }, '*');
  const delta = await seen;
  lib.assert(delta.$version >= 2, 'desired push carries $version');

  // Direct method round trip.
  device.onDeviceMethod('reboot', (req, res) => {
    res.send(200, { received: req.payload, method: req.methodName }, () => {});
  });
  const call = await client.invokeDeviceMethod(id, {
    methodName: 'reboot', payload: { delay: 5, reason: 'conformance' }, responseTimeoutInSeconds: 15,
  });
  lib.assertEqual(call.result, { status: 200, payload: { received: { delay: 5, reason: 'conformance' }, method: 'reboot' } },
    'direct method result (status and payload)');
  const nullCall = await client.invokeDeviceMethod(id, { methodName: 'reboot', responseTimeoutInSeconds: 15 });
  lib.assertEqual(nullCall.result.payload.received, null, 'a method without payload arrives as null');

  // Cloud-to-device with properties, completed by the device, feedback recorded.
  const received = lib.within(15000, 'C2D message at the device', new Promise((resolve) => {
    device.on('message', (msg) => { device.complete(msg, () => resolve(msg)); });
  }));
  const mid = `${id}-c2d-1`;
  await lib.sendC2d(id, 'hello device', { messageId: mid, ack: 'full', props: { color: 'red blue' } });
  const msg = await received;
  lib.assertEqual(msg.getData().toString(), 'hello device', 'C2D body');
  lib.assertEqual(msg.messageId, mid, 'C2D message id');
  lib.assertEqual(msg.properties.getValue('color'), 'red blue', 'C2D application property');
  const feedback = await lib.waitForFeedback(mid);
  lib.assertEqual(feedback[0].statusCode, 'Success', 'C2D feedback is Success');
  lib.assertEqual(feedback[0].deviceId, id, 'feedback names the device');

  if (!ws) {
    // Wait for two token renewals (two reconnects with new tokens), then use twin and methods.
    await lib.within(30000, 'two SAS token renewals', new Promise((resolve) => {
      const check = setInterval(() => { if (renewals >= 2) { clearInterval(check); resolve(); } }, 100);
    }));
    lib.ok(`the SDK renewed its token ${renewals} times`);
    const again = await device.getTwin();
    lib.assert(again.properties.reported.battery === 87, 'twin GET after token renewal');
    seen = desiredSeen({ interval: 60 });
    await registry.updateTwin(id, { properties: { desired: { interval: 60 } } }, '*');
    await seen;
    lib.ok('desired push after token renewal');
    const late = await client.invokeDeviceMethod(id, { methodName: 'reboot', payload: 7, responseTimeoutInSeconds: 15 });
    lib.assertEqual(late.result.payload.received, 7, 'direct method after token renewal');
    const svc = (await registry.get(id)).responseBody;
    lib.assertEqual(svc.connectionState, 'Connected', 'registry shows the device connected');
  }

  await device.close();
  lib.ok('device closed');
});
