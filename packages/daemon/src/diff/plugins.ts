import type { LocalContent } from '../content/local-content.js';
import { type PluginRegistration, PluginType } from '../plugin.js';
import { diffService } from '../services/diff.js';
import { LocalDiff } from './local-diff.js';

// The walking differ (io.containerd.differ.v1 "walking") and the Diff service on top of it
// (registered with the other grpc plugins, so load order matches registration order).

export function diffPlugin(root: string): PluginRegistration {
  return {
    type: PluginType.Differ,
    id: 'walking',
    requires: [PluginType.Content],
    init: (ctx) => {
      const local = new LocalDiff({
        root,
        content: () => ctx.get<LocalContent>(PluginType.Content, 'content'),
        logger: ctx.logger,
      });
      return { instance: local, exports: { tmpmounts: `${root}/tmpmounts` } };
    },
  };
}

export function diffGrpcPlugin(): PluginRegistration {
  return {
    type: PluginType.Grpc,
    id: 'diff',
    requires: [PluginType.Differ],
    init: (ctx) => ({ services: [diffService(ctx.get<LocalDiff>(PluginType.Differ, 'walking'))] }),
  };
}
