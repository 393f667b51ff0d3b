import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { OCI_SPEC_URL, packJson } from '@ctrd/api-proto/client';
import { ContainersService } from '@ctrd/api-proto/containers';
import { TasksService } from '@ctrd/api-proto/tasks';
import { ProcessSession } from '../../attach.js';
import { CtrCommand } from '../../base-command.js';
import { UsageError } from '../../errors.js';
import type { OciSpec } from '../../oci-spec.js';
import { BUNDLE_LABEL } from '../../labels.js';
import { createTask } from '../../task-create.js';

/** An OCI bundle's config.json, its root made absolute so the daemon can find it from anywhere. */
export function readBundle(bundle: string): OciSpec {
  const dir = resolve(bundle);
  let spec: OciSpec;
  try {
    spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as OciSpec;
  } catch (err) {
    throw new UsageError(`bundle ${bundle}: cannot read config.json: ${(err as Error).message}`);
  }
  const root = spec.root?.path ?? 'rootfs';
  spec.root = { ...spec.root, path: isAbsolute(root) ? root : join(dir, root) };
  return spec;
}

/** containerd 0.x's `ctr containers start ID BUNDLE`: container and task from an OCI bundle, then started. */
export default class ContainersStart extends CtrCommand<typeof ContainersStart> {
  static override summary = 'create and start a container from an OCI bundle (config.json + rootfs)';
  static override description =
    "containerd 0.x's verb. Without --attach the container runs detached (its output in `ctr logs`). " +
    '`ctr containers` shows the bundle in its PATH column.';
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    bundle: Args.string({ required: true, description: 'bundle directory' }),
  };
  static override flags = {
    // -a is --address, as everywhere; containerd 0.x used it for --attach here.
    attach: Flags.boolean({ summary: 'attach stdio and exit with the container’s status' }),
    checkpoint: Flags.string({ char: 'c', summary: 'restore from this checkpoint', helpValue: 'NAME' }),
    runtime: Flags.string({ summary: 'runtime name', default: 'io.containerd.runc.v2', helpValue: 'NAME' }),
  };

  async run(): Promise<void> {
    if (this.flags.checkpoint) {
      throw new Error('containers start --checkpoint: restoring checkpoints is not supported yet');
    }
    const { id, bundle } = this.args;
    const spec = readBundle(bundle);
    const res = await this.clients.get(ContainersService).create({
      container: {
        id,
        runtime: { name: this.flags.runtime },
        spec: packJson(OCI_SPEC_URL, spec),
        labels: { [BUNDLE_LABEL]: resolve(bundle) },
      },
    });
    const container = res.container;
    if (!container) throw new Error(`container "${id}": the daemon returned no container`);
    const session = new ProcessSession(this.clients, this.io, {
      containerId: id,
      execId: '',
      terminal: spec.process?.terminal === true,
      detach: !this.flags.attach,
      handleSignals: this.interactive,
    });
    await session.create((stdio) => createTask(this.clients, container, stdio).then(() => undefined));
    const status = await session.run();
    if (status === undefined) return;
    await this.clients.get(TasksService).delete({ containerId: id });
    if (status !== 0) this.exitWith(status);
  }
}
