// @ctrd/api-proto/ttrpc: containerd's ttrpc (the shim protocol) in both directions, driven by the
// same generated service descriptors and implementations as the gRPC side. Unary calls only, as
// containerd 1.6 uses it. Importing this loads no native code: koffi (for SO_PEERCRED) is loaded
// when a server that checks peers starts.

export type { TtrpcClientOptions, TtrpcTransport, TtrpcTransportOptions } from './ttrpc/client.js';
export { createTtrpcClient, createTtrpcTransport } from './ttrpc/client.js';
export type { Frame, FrameEvent, FrameHeader } from './ttrpc/frame.js';
export {
  decodeHeader,
  encodeFrame,
  encodeHeader,
  FLAG_NO_DATA,
  FLAG_REMOTE_CLOSED,
  FLAG_REMOTE_OPEN,
  FrameReader,
  HEADER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  oversizeMessage,
} from './ttrpc/frame.js';
export type { PeerCredentials, PeerCredentialsReader } from './ttrpc/peer-credentials.js';
export { isSameUser, loadPeerCredentialsReader } from './ttrpc/peer-credentials.js';
export type { PeerCheck, TtrpcServer, TtrpcServerOptions } from './ttrpc/server.js';
export { createTtrpcServer, TTRPC_METADATA } from './ttrpc/server.js';
export { errorFromStatus, statusFromError } from './ttrpc/status.js';
export { TTRPC_NAMESPACE_HEADER } from './namespace-headers.js';
export { service } from './serving.js';
export type { KeyValue, Request, Response } from './gen/github.com/containerd/ttrpc/request_pb.js';
export {
  KeyValueSchema,
  RequestSchema,
  ResponseSchema,
} from './gen/github.com/containerd/ttrpc/request_pb.js';
