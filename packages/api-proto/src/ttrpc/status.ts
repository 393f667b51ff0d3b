import { create } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { type Code, ConnectError } from '@connectrpc/connect';
import { toConnectError } from '../errors.js';
import { type Status, StatusSchema } from '../gen/google/rpc/status_pb.js';

// A ttrpc Response carries a google.rpc.Status. Errors become one the way they become gRPC
// trailers (toConnectError: ctrd's classes to codes), and a Status becomes a ConnectError that
// withErrorClasses turns back into a class: the one code table of errors.ts serves both transports,
// as containerd's errdefs serve its gRPC and ttrpc sides (Go's ttrpc client returns
// status.ErrorProto(resp.Status), which errdefs.FromGRPC maps like any gRPC error).

/** The Status a server answers for any thrown value (ctrd classes by kind, others Unknown). */
export function statusFromError(e: unknown): Status {
  const err = toConnectError(e);
  return create(StatusSchema, {
    code: err.code,
    message: err.rawMessage,
    details: err.details.map((d) =>
      'desc' in d
        ? anyPack(d.desc, create(d.desc, d.value))
        : { typeUrl: `type.googleapis.com/${d.type}`, value: d.value },
    ),
  });
}

/** The error a client throws for a Status; undefined for a missing Status or code 0 (OK). */
export function errorFromStatus(status: Status | undefined): ConnectError | undefined {
  if (status === undefined || status.code === 0) return undefined;
  // Codes Connect does not know (a buggy or newer peer) stay as they are: kindFromCode makes them
  // Unknown, which is what errdefs.FromGRPC does with them.
  const err = new ConnectError(status.message, status.code as Code);
  err.details = status.details.map((a) => ({
    type: a.typeUrl.slice(a.typeUrl.lastIndexOf('/') + 1),
    value: a.value,
  }));
  return err;
}
