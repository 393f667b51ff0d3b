import { test } from 'vitest';
import { Runc, pipeIO, ConsoleSocket, RuncError } from '../src/index.js';
import { makeBundle } from './helpers/bundle.js';
test('smoke', async () => {
  const b = await makeBundle({ args: ['sh', '-c', 'echo hi; echo err >&2; exit 3'] });
  const runc = new Runc({ root: b.root });
  console.log(await runc.version());
  const io = pipeIO({ stdin: false });
  let out = '';
  io.stdout?.on('data', (d) => (out += d));
  let err = '';
  io.stderr?.on('data', (d) => (err += d));
  const r = await runc.run('smoke1', b.bundle, { io });
  console.log(r, JSON.stringify(out), JSON.stringify(err));
  await b.cleanup();
  const b2 = await makeBundle({ args: ['sleep', '100'] });
  const runc2 = new Runc({ root: b2.root });
  const c = await runc2.create('s2', b2.bundle, {});
  console.log('create', c, await runc2.state('s2'));
  await runc2.start('s2');
  console.log(await runc2.ps('s2'));
  const io2 = pipeIO({ stdin: false });
  let o2 = '';
  io2.stdout?.on('data', (d) => (o2 += d));
  console.log(await runc2.exec('s2', { args: ['sh', '-c', 'echo exec-out; exit 5'], io: io2 }), o2);
  console.log(
    await runc2.exec('s2', {
      process: { args: ['true'], cwd: '/', env: ['PATH=/bin'], user: { uid: 0, gid: 0 } },
      detach: true,
    }),
  );
  console.log(JSON.stringify(await runc2.stats('s2')).slice(0, 200));
  await runc2.update('s2', { pids: { limit: 50 } });
  await runc2.pause('s2');
  console.log((await runc2.state('s2')).status);
  await runc2.resume('s2');
  try {
    await runc2.checkpoint('s2', { imagePath: b2.dir + '/img', workPath: b2.dir + '/work' });
  } catch (e) {
    console.log('ckpt', e instanceof RuncError, (e as Error).message);
  }
  try {
    await runc2.start('nope');
  } catch (e) {
    console.log('nope', (e as Error).message, (e as RuncError).isNotFound());
  }
  try {
    await runc2.create('s2', b2.bundle);
  } catch (e) {
    console.log('dup', (e as Error).message);
  }
  const it = runc2.events('s2', { intervalMs: 200 });
  for await (const ev of it) {
    console.log('ev', ev.type);
    break;
  }
  await runc2.kill('s2', 'KILL', { all: true });
  await new Promise((r) => setTimeout(r, 300));
  await runc2.delete('s2', { force: true });
  console.log('list', await runc2.list());
  await b2.cleanup();
}, 60000);
