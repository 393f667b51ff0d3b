import { isNotImplemented } from '@ctrd/api-proto/client';
import { type Container, ContainersService } from '@ctrd/api-proto/containers';
import type { Clients } from './clients.js';

/** Containers.ListStream, falling back to List on daemons without it (as containerd's client does). */
export async function listContainers(clients: Clients, filters: string[] = []): Promise<Container[]> {
  const api = clients.get(ContainersService);
  try {
    const out: Container[] = [];
    for await (const msg of api.listStream({ filters })) if (msg.container) out.push(msg.container);
    return out;
  } catch (err) {
    if (!isNotImplemented(err)) throw err;
    return (await api.list({ filters })).containers;
  }
}
