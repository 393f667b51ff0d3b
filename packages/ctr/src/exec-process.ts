import { randomBytes } from 'node:crypto';
import { OCI_PROCESS_URL, packJson } from '@ctrd/api-proto/client';
import { TasksService } from '@ctrd/api-proto/tasks';
import { ProcessSession } from './attach.js';
import type { Clients } from './clients.js';
import type { CtrIo } from './io.js';
import { mergeEnv, type OciProcess, resolveUser } from './oci-spec.js';
import { getContainer, specOf } from './task-create.js';

export function generateExecId(): string {
  return `exec-${randomBytes(4).toString('hex')}`;
}

export interface ExecInput {
  containerId: string;
  execId: string;
  args: string[];
  tty: boolean;
  detach: boolean;
  cwd?: string;
  env?: string[];
  user?: string;
  uid?: number;
  gid?: number;
  nullIo?: boolean;
  fifoDir?: string;
  handleSignals: boolean;
}

/**
 * Tasks.Exec with an OCI Process derived from the container's own (env, user, capabilities), then
 * the same attach as `run`. Resolves to the exit status, or undefined when detached.
 */
export async function execProcess(
  clients: Clients,
  io: CtrIo,
  input: ExecInput,
): Promise<{ status: number | undefined; pid: number }> {
  const container = await getContainer(clients, input.containerId);
  const spec = specOf(container);
  const base: OciProcess = spec?.process ?? { user: { uid: 0, gid: 0 }, args: [], env: [], cwd: '/' };
  const process: OciProcess = { ...base, args: input.args, terminal: input.tty };
  if (input.cwd) process.cwd = input.cwd;
  if (input.env?.length) process.env = mergeEnv(base.env ?? [], input.env);
  if (input.user) process.user = resolveUser(input.user, spec?.root.path ?? '/');
  if (input.uid !== undefined) process.user = { ...process.user, uid: input.uid };
  if (input.gid !== undefined) process.user = { ...process.user, gid: input.gid };
  const tasks = clients.get(TasksService);
  const session = new ProcessSession(clients, io, {
    containerId: input.containerId,
    execId: input.execId,
    terminal: input.tty,
    detach: input.detach,
    nullIo: input.nullIo,
    fifoDir: input.fifoDir,
    handleSignals: input.handleSignals,
  });
  await session.create(async (stdio) => {
    await tasks.exec({
      containerId: input.containerId,
      execId: input.execId,
      stdin: stdio.stdin,
      stdout: stdio.stdout,
      stderr: stdio.stderr,
      terminal: stdio.terminal,
      spec: packJson(OCI_PROCESS_URL, process),
    });
  });
  const status = await session.run();
  if (status !== undefined) {
    await tasks
      .deleteProcess({ containerId: input.containerId, execId: input.execId })
      .catch(() => undefined);
  }
  return { status, pid: session.pid };
}
