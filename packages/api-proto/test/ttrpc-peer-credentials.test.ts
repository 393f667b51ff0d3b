import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTtrpcServer,
  encodeFrame,
  isSameUser,
  loadPeerCredentialsReader,
  MessageType,
  type PeerCredentials,
  RequestSchema,
  service,
} from '../src/ttrpc.js';
import { VersionService } from '../src/version.js';
import { RawPeer, recordingLogger } from './ttrpc-helpers.js';

// The same-user rule of containerd's ttrpc servers, checked with real peers: a child process
// running as nobody (setpriv) connects and sends a valid call.

const SETPRIV = '/usr/bin/setpriv';
const NOBODY = 65534;
const canSwitchUser = process.getuid?.() === 0 && existsSync(SETPRIV);

let dir: string;
let script: string;

// The child prints how many bytes it got back before the server closed, or the answer's size.
const PEER_SCRIPT = `
const net = require('node:net');
const [path, frame] = process.argv.slice(2);
const s = net.connect(path);
let got = 0;
const done = (extra) => {
  console.log(JSON.stringify({ got, pid: process.pid, uid: process.getuid(), ...extra }));
  process.exit(0);
};
s.on('connect', () => s.write(Buffer.from(frame, 'hex')));
s.on('data', (d) => { got += d.length; done({ closed: false }); });
s.on('close', () => done({ closed: true }));
s.on('error', (e) => done({ error: e.code }));
setTimeout(() => done({ timeout: true }), 5000);
`;

const versionCall = Buffer.from(
  encodeFrame(
    1,
    MessageType.Request,
    0,
    toBinary(
      RequestSchema,
      create(RequestSchema, { service: 'containerd.services.version.v1.Version', method: 'Version' }),
    ),
  ),
).toString('hex');

// Refused: nothing came back, and the connection ended (a reset when the server closed it while the
// call was being written).
function refused(run: PeerRun): boolean {
  return run.got === 0 && (run.closed === true || run.error === 'ECONNRESET' || run.error === 'EPIPE');
}

interface PeerRun {
  got: number;
  pid: number;
  uid: number;
  closed?: boolean;
  error?: string;
  timeout?: boolean;
}

function runPeer(socket: string, asNobody: boolean): Promise<PeerRun> {
  const [file, args] = asNobody
    ? [
        SETPRIV,
        [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          script,
          socket,
          versionCall,
        ],
      ]
    : [process.execPath, [script, socket, versionCall]];
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as PeerRun);
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ttrpc-cred-'));
  // nobody must reach the script and the socket.
  await chmod(dir, 0o755);
  script = join(dir, 'peer.cjs');
  await writeFile(script, PEER_SCRIPT, { mode: 0o644 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('peer credentials', () => {
  it('isSameUser wants both the effective uid and gid (UnixSocketRequireSameUser)', () => {
    const self = { uid: 1000, gid: 1000 };
    expect(isSameUser({ pid: 1, uid: 1000, gid: 1000 }, self)).toBe(true);
    expect(isSameUser({ pid: 1, uid: 0, gid: 1000 }, self)).toBe(false);
    expect(isSameUser({ pid: 1, uid: 1000, gid: 0 }, self)).toBe(false);
  });

  it('reads SO_PEERCRED of an accepted connection', async () => {
    const seen: PeerCredentials[] = [];
    const server = await createTtrpcServer({
      socketPath: join(dir, 'self.sock'),
      services: [service(VersionService, { version: () => ({ version: 'v' }) })],
      peerCheck: (cred) => {
        seen.push(cred);
        return isSameUser(cred);
      },
    });
    try {
      const peer = await RawPeer.connect(server.socketPath);
      peer.send(1, MessageType.Request, Buffer.from(versionCall, 'hex').subarray(10));
      expect((await peer.response()).code).toBe(0);
      peer.close();
      expect(seen).toEqual([{ pid: process.pid, uid: process.geteuid!(), gid: process.getegid!() }]);
      // A check that throws refuses the connection and leaves the server up.
      const log = recordingLogger();
      const throwing = await createTtrpcServer({
        socketPath: join(dir, 'throwing.sock'),
        logger: log,
        peerCheck: () => {
          throw new Error('no');
        },
      });
      const refusedPeer = await RawPeer.connect(throwing.socketPath);
      await refusedPeer.closed;
      const warnings = log.lines.filter((l) => l.level !== 'debug');
      expect(warnings.map((l) => [l.level, l.msg, (l.obj as { reason: string }).reason])).toEqual([
        ['warn', 'ttrpc: refusing connection', 'credential check threw'],
      ]);
      await throwing.close({ graceMs: 50 });
      const read = await loadPeerCredentialsReader();
      expect(read).toBe(await loadPeerCredentialsReader());
    } finally {
      await server.close({ graceMs: 50 });
    }
  });

  describe.skipIf(!canSwitchUser)('a peer running as another user (root and setpriv needed)', () => {
    it('is refused by default: closed unanswered, with a warning naming it', async () => {
      const log = recordingLogger();
      const server = await createTtrpcServer({
        socketPath: join(dir, 'same-user.sock'),
        mode: 0o666,
        logger: log,
        services: [service(VersionService, { version: () => ({ version: 'v' }) })],
      });
      try {
        const nobody = await runPeer(server.socketPath, true);
        expect(nobody.uid).toBe(NOBODY);
        expect(refused(nobody), JSON.stringify(nobody)).toBe(true);
        const warn = log.lines.find((l) => l.level === 'warn');
        expect(warn?.msg).toBe('ttrpc: refusing connection');
        expect(warn?.obj).toEqual({
          peer: { pid: nobody.pid, uid: NOBODY, gid: NOBODY },
          reason: 'credential check failed',
        });
        // The same program as our own user is answered.
        expect(await runPeer(server.socketPath, false)).toMatchObject({
          got: expect.any(Number),
          closed: false,
        });
      } finally {
        await server.close({ graceMs: 50 });
      }
    });

    it("is served with peerCheck 'none', and a check function sees its credentials", async () => {
      const open = await createTtrpcServer({
        socketPath: join(dir, 'open.sock'),
        mode: 0o666,
        peerCheck: 'none',
        services: [service(VersionService, { version: () => ({ version: 'v' }) })],
      });
      const seen: PeerCredentials[] = [];
      const custom = await createTtrpcServer({
        socketPath: join(dir, 'custom.sock'),
        mode: 0o666,
        peerCheck: (cred) => {
          seen.push(cred);
          return cred.uid === NOBODY;
        },
        services: [service(VersionService, { version: () => ({ version: 'v' }) })],
      });
      try {
        const a = await runPeer(open.socketPath, true);
        expect(a.closed).toBe(false);
        expect(a.got).toBeGreaterThan(0);
        const b = await runPeer(custom.socketPath, true);
        expect(b.closed).toBe(false);
        expect(seen).toEqual([{ pid: b.pid, uid: NOBODY, gid: NOBODY }]);
        const root = await runPeer(custom.socketPath, false);
        expect(refused(root), JSON.stringify(root)).toBe(true);
      } finally {
        await open.close({ graceMs: 50 });
        await custom.close({ graceMs: 50 });
      }
    });
  });
});
