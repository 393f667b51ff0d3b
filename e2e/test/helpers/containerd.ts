import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// A stock containerd 1.6 (Debian's) on a private root, state dir and socket under `dir`, with the
// CRI and the snapshotters this host cannot run disabled. Tests that run it side by side with ctrd
// start tasks on neither through it: its shim would use /run/containerd.

export const CONTAINERD = '/usr/bin/containerd';

export interface StockContainerd {
  readonly socket: string;
  readonly child: ChildProcess;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
}

export function stockContainerdAvailable(): boolean {
  return existsSync(CONTAINERD);
}

export async function startStockContainerd(dir: string, readyMs = 20_000): Promise<StockContainerd> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'containerd.sock');
  const config = [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", ' +
      '"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.toml'), config);
  const child = spawn(CONTAINERD, ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + readyMs;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`containerd did not create ${socket} within ${readyMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socket, child, stop };
}
