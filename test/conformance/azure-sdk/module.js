// A module identity with its own connection string: telemetry from the module, its module
// twin (reported and desired), and a direct method invoked on the module.
'use strict';

const { ModuleClient, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const lib = require('./lib');

lib.run(async ({ registry, client, prefix }) => {
  const deviceId = `${prefix}-edge`;
  const moduleId = 'sensor';
  await lib.createDevice(registry, deviceId);
  const mod = (await registry.addModule({ deviceId, moduleId })).responseBody;
  lib.assertEqual(mod.moduleId, moduleId, 'module created with generated keys');
  const modules = (await registry.getModulesOnDevice(deviceId)).responseBody;
  lib.assertEqual(modules.map((m) => m.moduleId), [moduleId], 'modules listed on the device');

  const cs = lib.deviceConnectionString(mod, moduleId);
  const mc = ModuleClient.fromConnectionString(cs, Mqtt);
  await mc.open();
  lib.ok('module client connected');

  const m = new Message('{"level":3}');
  m.messageId = `${deviceId}-module-m1`;
  m.properties.add('source', 'module');
  await mc.sendEvent(m);
  lib.ok('module telemetry acknowledged');

  const twin = await mc.getTwin();
  const deltas = [];
  twin.on('properties.desired', (d) => deltas.push(d));
  await new Promise((resolve, reject) => twin.properties.reported.update(
    { moduleState: 'running' }, (e) => (e ? reject(e) : resolve())));
  const svcTwin = (await registry.getModuleTwin(deviceId, moduleId)).responseBody;
  lib.assertEqual(svcTwin.moduleId, moduleId, 'module twin names the module');
  lib.assertEqual(svcTwin.properties.reported.moduleState, 'running', 'module reported property');
  const deviceTwin = (await registry.getTwin(deviceId)).responseBody;
  lib.assert(deviceTwin.properties.reported.moduleState === undefined,
    'the device twin is separate from the module twin');

  await registry.updateModuleTwin(deviceId, moduleId, { properties: { desired: { rate: 9 } } }, '*');
  await lib.within(10000, 'module desired push', new Promise((resolve) => {
    const t = setInterval(() => { if (deltas.some((d) => d.rate === 9)) { clearInterval(t); resolve(); } }, 50);
  }));
  lib.ok('module desired push');

  mc.onMethod('calibrate', (req, res) => res.send(200, { module: true, got: req.payload }, () => {}));
  const r = await client.invokeDeviceMethod(deviceId, moduleId,
    { methodName: 'calibrate', payload: { offset: 2 }, responseTimeoutInSeconds: 15 });
  lib.assertEqual(r.result, { status: 200, payload: { module: true, got: { offset: 2 } } },
    'module direct method round trip');
  await lib.rejects(client.invokeDeviceMethod(deviceId,
    { methodName: 'calibrate', responseTimeoutInSeconds: 5 }),
    'the device itself is not connected: its method call is refused');

  await mc.close();
  await registry.removeModule(deviceId, moduleId);
  await lib.rejects(registry.getModule(deviceId, moduleId), 'a removed module is gone');
});
