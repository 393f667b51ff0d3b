// The least a Node process can do to answer `ctr containers ls`: one gRPC Containers.List call on a
// bare node:http2 session, with no CLI framework, no Connect and no protobuf decoding. The startup
// bench runs it as the floor under any command that talks to the daemon.
//
//   node e2e/bench/lib/grpc-floor.mjs SOCKET [NAMESPACE]
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';

const [socket, namespace = 'default'] = process.argv.slice(2);
if (!socket) {
  process.stderr.write('usage: node e2e/bench/lib/grpc-floor.mjs SOCKET [NAMESPACE]\n');
  process.exit(2);
}
const session = http2Connect('http://localhost', { createConnection: () => netConnect(socket) });
const req = session.request({
  ':method': 'POST',
  ':path': '/containerd.services.containers.v1.Containers/List',
  'content-type': 'application/grpc',
  te: 'trailers',
  'containerd-namespace': namespace,
});
// An empty ListContainersRequest: one uncompressed gRPC frame of length 0.
req.end(Buffer.alloc(5));
let bytes = 0;
req.on('data', (d) => {
  bytes += d.length;
});
req.on('end', () => {
  process.stdout.write(`${bytes} bytes\n`);
  session.close();
});
req.on('error', (e) => {
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 1;
  session.close();
});
