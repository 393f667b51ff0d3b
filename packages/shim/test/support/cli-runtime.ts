import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime, RuntimeStdio } from '../../src/runtime.js';

// Test support only: just enough of runc's command line to exercise the TaskManager against real
// containers before (and independently of) @ctrd/runc-client. No console socket. The shim itself
// uses src/runc-runtime.ts.

export function cliRuntime(root: string): Runtime {
  const runc = async (args: string[], stdio?: RuntimeStdio, input?: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'runc-log-'));
    const log = join(dir, 'log.json');
    try {
      return await new Promise<string>((resolve, reject) => {
        const child = spawn('runc', ['--root', root, '--log', log, '--log-format', 'json', ...args], {
          stdio: [
            input !== undefined ? 'pipe' : (stdio?.stdin ?? 'ignore'),
            stdio ? (stdio.stdout ?? 'ignore') : 'pipe',
            stdio ? (stdio.stderr ?? 'ignore') : 'pipe',
          ],
        });
        let out = '';
        let err = '';
        child.stdout?.on('data', (d) => {
          out += d;
        });
        child.stderr?.on('data', (d) => {
          err += d;
        });
        if (input !== undefined) child.stdin?.end(input);
        child.on('error', reject);
        child.on('exit', async (code) => {
          if (code === 0) return resolve(out);
          const text = await readFile(log, 'utf8').catch(() => '');
          const msgs = text
            .split('\n')
            .filter((l) => l.includes('"level":"error"'))
            .map((l) => JSON.parse(l).msg as string);
          reject(new Error(`runc ${args[0]}: ${msgs.join('; ') || err.trim() || `exit ${code}`}`));
        });
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  return {
    async create(id, bundle, opts) {
      await runc(['create', '--bundle', bundle, '--pid-file', opts.pidFile, id], opts.stdio);
    },
    async start(id) {
      await runc(['start', id]);
    },
    async exec(id, process, opts) {
      const dir = await mkdtemp(join(tmpdir(), 'runc-exec-'));
      try {
        await writeFile(join(dir, 'process.json'), JSON.stringify(process));
        await runc(
          ['exec', '--detach', '--pid-file', opts.pidFile, '--process', join(dir, 'process.json'), id],
          opts.stdio,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async kill(id, sig, all) {
      await runc(['kill', ...(all ? ['--all'] : []), id, String(sig)]);
    },
    async delete(id, force) {
      await runc(['delete', ...(force ? ['--force'] : []), id]);
    },
    async state(id) {
      try {
        const s = JSON.parse(await runc(['state', id]));
        return { status: s.status, pid: s.pid };
      } catch {
        return undefined;
      }
    },
    async ps(id) {
      return JSON.parse(await runc(['ps', '--format', 'json', id])) ?? [];
    },
    async pause(id) {
      await runc(['pause', id]);
    },
    async resume(id) {
      await runc(['resume', id]);
    },
    async update(id, resources) {
      await runc(['update', '--resources', '-', id], undefined, JSON.stringify(resources));
    },
    async checkpoint(id, o) {
      await runc([
        'checkpoint',
        '--image-path',
        o.imagePath,
        ...(o.workPath ? ['--work-path', o.workPath] : []),
        ...(o.leaveRunning ? ['--leave-running'] : []),
        id,
      ]);
    },
    async newConsoleSocket() {
      throw new Error('cli test runtime: no console socket');
    },
  };
}
