// An X.509 device registered with a self-signed certificate's thumbprint: it connects over
// MQTT/TLS presenting the certificate (no SAS token), sends telemetry and uses its twin; the
// same certificate is refused for a device registered with another thumbprint.
'use strict';

const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');

lib.run(async ({ registry, prefix }) => {
  const cert = fs.readFileSync(process.env.X509_CERT, 'utf8');
  const key = fs.readFileSync(process.env.X509_KEY, 'utf8');
  const thumbprint = process.env.X509_THUMBPRINT;
  const id = process.env.X509_DEVICE_ID;
  await lib.createDevice(registry, id, {
    authentication: { x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: null } },
  });
  const created = (await registry.get(id)).responseBody;
  lib.assertEqual(created.authentication.type, 'selfSigned', 'thumbprints without a type mean selfSigned');

  const device = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${id};x509=true`, Mqtt);
  device.setOptions({ cert, key });
  await device.open();
  lib.ok('X.509 device connected with its certificate');
  const m = new Message('{"x509":true}');
  m.messageId = `${id}-m1`;
  await device.sendEvent(m);
  lib.ok('X.509 device telemetry acknowledged');
  const twin = await device.getTwin();
  await new Promise((resolve, reject) => twin.properties.reported.update(
    { auth: 'x509' }, (e) => (e ? reject(e) : resolve())));
  const svc = (await registry.getTwin(id)).responseBody;
  lib.assertEqual(svc.authenticationType, 'selfSigned', 'twin authenticationType');
  lib.assertEqual(svc.properties.reported.auth, 'x509', 'X.509 device reported property');
  await device.close();

  // The certificate does not open another device registered with a different thumbprint.
  const other = `${prefix}-x509-other`;
  await lib.createDevice(registry, other, {
    authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: '0'.repeat(40) } },
  });
  const wrong = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${other};x509=true`, Mqtt);
  wrong.setOptions({ cert, key });
  await lib.rejects(wrong.open(), 'a certificate whose thumbprint is not registered is refused');
});
