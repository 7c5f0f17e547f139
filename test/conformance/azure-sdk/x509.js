// X.509 devices over MQTT/TLS (no SAS token): one registered with a self-signed certificate's
// thumbprint (telemetry, twin; the certificate is refused for a device with another
// thumbprint), and one of type certificateAuthority whose certificate a verified CA issued.
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

  // certificateAuthority: a device certificate issued by a CA the hub verified (registered by
  // the driver with a proof of possession); the subject CN is the device id.
  const caId = process.env.X509_CA_DEVICE_ID;
  if (caId) {
    await lib.createDevice(registry, caId, { authentication: { type: 'certificateAuthority' } });
    const caDevice = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${caId};x509=true`, Mqtt);
    caDevice.setOptions({
      cert: fs.readFileSync(process.env.X509_CA_CERT, 'utf8'),
      key: fs.readFileSync(process.env.X509_CA_KEY, 'utf8'),
    });
    await caDevice.open();
    lib.ok('a CA-signed device certificate connects');
    const cm = new Message('{"ca":true}');
    cm.messageId = `${caId}-m1`;
    await caDevice.sendEvent(cm);
    lib.ok('CA-signed device telemetry acknowledged');
    await caDevice.close();
    // The same certificate does not open a device whose id is not its CN.
    const imposter = `${prefix}-x509-ca-imposter`;
    await lib.createDevice(registry, imposter, { authentication: { type: 'certificateAuthority' } });
    const bad = Client.fromConnectionString(`HostName=${lib.HOST};DeviceId=${imposter};x509=true`, Mqtt);
    bad.setOptions({
      cert: fs.readFileSync(process.env.X509_CA_CERT, 'utf8'),
      key: fs.readFileSync(process.env.X509_CA_KEY, 'utf8'),
    });
    await lib.rejects(bad.open(), 'a CA-signed certificate for another device id is refused');
  }
});
