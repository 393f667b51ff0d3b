#!/usr/bin/env node
// Runs a busybox container through @ctrd/runc-client and prints its output and exit code.
//
//   node run-busybox.mjs [command...]      (as root; default: a shell that greets and exits 3)
//
// Environment:
//   RUNC_BUNDLE  an OCI bundle to run (absolute path); without it a temp bundle is built from
//                /bin/busybox (busybox-static) and `runc spec`
//   RUNC_ROOT    runc's state dir (absolute path); default: a private temp dir
//   RUNC_BINARY  the runc binary; default: runc from PATH
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pipeIO, Runc, RuncError, RuncValidationError } from '@ctrd/runc-client';

const run = promisify(execFile);
const command =
  process.argv.length > 2 ? process.argv.slice(2) : ['sh', '-c', 'echo hello from busybox; exit 3'];

async function buildBundle(dir, runcBinary) {
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) {
    await symlink('busybox', join(rootfs, 'bin', applet));
  }
  await run(runcBinary, ['spec', '--bundle', dir]);
  const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  spec.root = { path: 'rootfs', readonly: false };
  spec.process.args = command;
  spec.process.terminal = false;
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
}

const temp = await mkdtemp(join(tmpdir(), 'run-busybox-'));
const root = process.env.RUNC_ROOT ?? join(temp, 'state');
const runc = new Runc({ root, ...(process.env.RUNC_BINARY && { binary: process.env.RUNC_BINARY }) });
const id = `busybox-${process.pid}`;
try {
  let bundle = process.env.RUNC_BUNDLE;
  if (!bundle) {
    bundle = join(temp, 'bundle');
    await buildBundle(bundle, process.env.RUNC_BINARY ?? 'runc');
  }
  const { runc: version } = await runc.version();
  console.log(`runc ${version}, container ${id}, bundle ${bundle}`);

  // The container's stdout and stderr come back through pipes; it runs in the foreground, so
  // run() resolves with its exit code once it is gone.
  const io = pipeIO({ stdin: false });
  const output = [];
  io.stdout.on('data', (d) => output.push(d));
  io.stderr.on('data', (d) => output.push(d));
  const ended = Promise.all([
    new Promise((r) => io.stdout.once('close', r)),
    new Promise((r) => io.stderr.once('close', r)),
  ]);
  const { exitStatus } = await runc.run(id, bundle, { io, signal: AbortSignal.timeout(60_000) });
  await ended;
  console.log('container output:');
  const text = Buffer.concat(output).toString('utf8').replace(/\n$/, '');
  if (text) console.log(text.replace(/^/gm, '  '));
  console.log(`container exit code: ${exitStatus}`);
} catch (e) {
  if (e instanceof RuncError) console.error(`${e.message}\n  argv: ${e.argv.join(' ')}`);
  else if (e instanceof RuncValidationError) console.error(e.message);
  else console.error(e);
  process.exitCode = 1;
} finally {
  // runc run deletes the container when it exits; this covers a failure half-way.
  if ((await runc.list().catch(() => [])).some((c) => c.id === id)) {
    await runc.delete(id, { force: true }).catch(() => {});
  }
  await rm(temp, { recursive: true, force: true });
}
