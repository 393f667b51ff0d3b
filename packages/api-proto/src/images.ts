// Subpath @ctrd/api-proto/images: containerd.services.images.v1, including the image event payloads.
export * from './gen/github.com/containerd/containerd/api/services/images/v1/images_pb.js';
export { Images as ImagesService } from './gen/github.com/containerd/containerd/api/services/images/v1/images_pb.js';
export * from './gen/github.com/containerd/containerd/api/events/image_pb.js';
