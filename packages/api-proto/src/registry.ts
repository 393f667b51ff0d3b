// @ctrd/api-proto/registry: the registry of every message containerd carries in an Any (events, runc
// options, cgroups metrics) and the decoder that uses it; loaded only by code that decodes unknown Anys.

export { typeRegistry, unpackAny } from './type-registry.js';
