// A device on the HTTPS transport: single and batch telemetry, and cloud-to-device receive
// with complete, reject and abandon (abandoned messages come back), with feedback.
'use strict';

const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');
const lib = require('./lib');

lib.run(async ({ registry, prefix }) => {
  const id = `${prefix}-http-dev`;
  const dev = await lib.createDevice(registry, id);
  const device = Client.fromConnectionString(lib.deviceConnectionString(dev), Http);
  await device.open();

  const single = new Message('{"via":"https"}');
  single.messageId = `${id}-m1`;
  single.properties.add('transport', 'http');
  await device.sendEvent(single);
  lib.ok('HTTPS telemetry accepted');
  const batch = [1, 2, 3].map((i) => {
    const b = new Message(JSON.stringify({ batch: i }));
    b.properties.add('n', String(i));
    return b;
  });
  await device.sendEventBatch(batch);
  lib.ok('HTTPS batch telemetry accepted');

  // Three C2D messages: reject the first, abandon the second once (it is redelivered, then
  // completed), complete the third.
  const ids = [`${id}-c2d-reject`, `${id}-c2d-abandon`, `${id}-c2d-complete`];
  for (const mid of ids) await lib.sendC2d(id, `body of ${mid}`, { messageId: mid, ack: 'full', props: { k: mid } });
  lib.ok('three C2D messages queued');
  const settled = new Set();
  let abandoned = false;
  const done = new Promise((resolve, reject) => {
    device.on('error', reject);
    device.on('message', (msg) => {
      const settle = (what, fn) => fn.call(device, msg, (err) => {
        if (err) return reject(err);
        lib.ok(`${what} ${msg.messageId}`);
        if (what !== 'abandoned') settled.add(msg.messageId);
        if (settled.size === 3) resolve();
      });
      if (msg.messageId === ids[0]) settle('rejected', device.reject);
      else if (msg.messageId === ids[1] && !abandoned) { abandoned = true; settle('abandoned', device.abandon); }
      else settle('completed', device.complete);
    });
  });
  await lib.within(30000, 'all C2D messages settled over HTTPS', done);
  lib.assert(abandoned, 'the abandoned message was delivered again');
  const rejected = await lib.waitForFeedback(ids[0]);
  lib.assertEqual(rejected[0].statusCode, 'Rejected', 'feedback for the rejected message');
  const completed = await lib.waitForFeedback(ids[2]);
  lib.assertEqual(completed[0].statusCode, 'Success', 'feedback for the completed message');
  await device.close();
});
