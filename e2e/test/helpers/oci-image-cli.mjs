#!/usr/bin/env node
// node e2e/test/helpers/oci-image-cli.mjs OUT.tar NAME [CMD...]
// Writes a one-layer busybox OCI image archive named NAME (e.g. docker.io/library/busybox:demo)
// to OUT.tar; CMD replaces the default command (which echoes $GREETING and the working dir).
// Import it with `ctr images import OUT.tar`. Needs the built @ctrd/api-proto (npx nx run-many -t build).

import { DEFAULT_CONFIG, writeBusyboxImageTar } from './oci-image.mjs';

const [out, name, ...cmd] = process.argv.slice(2);
if (!out || !name) {
  process.stderr.write('usage: oci-image-cli.mjs OUT.tar NAME [CMD...]\n');
  process.exit(2);
}
const config = cmd.length > 0 ? { ...DEFAULT_CONFIG, Cmd: cmd } : DEFAULT_CONFIG;
const image = await writeBusyboxImageTar(out, name, config);
process.stdout.write(`${out}: ${name} ${image.manifestDesc.digest}\n`);
