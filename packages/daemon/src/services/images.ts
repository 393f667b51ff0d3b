import { namespaceFromContext, service, type ServiceRegistration } from '@ctrd/api-proto';
import { ImagesService } from '@ctrd/api-proto/images';
import type { LocalImages } from '../images/local-images.js';

// The Images service: a thin layer over LocalImages.

export function imagesService(local: LocalImages): ServiceRegistration {
  return service(ImagesService, {
    get: async (req, ctx) => ({ image: local.get(namespaceFromContext(ctx), req.name) }),
    list: async (req, ctx) => ({
      images: await local.list(namespaceFromContext(ctx), req.filters, ctx.signal),
    }),
    create: async (req, ctx) => ({ image: local.create(namespaceFromContext(ctx), req.image) }),
    update: async (req, ctx) => ({
      image: local.update(namespaceFromContext(ctx), req.image, req.updateMask?.paths ?? []),
    }),
    delete: async (req, ctx) => {
      await local.delete(namespaceFromContext(ctx), req.name, { sync: req.sync, signal: ctx.signal });
      return {};
    },
  });
}
