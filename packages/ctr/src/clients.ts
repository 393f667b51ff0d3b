import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient, type Transport } from '@connectrpc/connect';
import { type UnixTransport, unixTransport, withCallDefaults } from './transport.js';

export interface ClientsOptions {
  address: string;
  namespace: string;
  timeoutMs?: number;
  /** In-memory or otherwise prepared transport; when absent ctr dials `address`. */
  transport?: Transport;
  trace?: (line: string) => void;
}

/**
 * The one place that builds API clients. The socket is dialled on first use and each service client is
 * made once, so a command only pays for the services it calls.
 */
export class Clients {
  readonly namespace: string;
  readonly #options: ClientsOptions;
  #base: Transport | undefined;
  #owned: UnixTransport | undefined;
  #transport: Transport | undefined;
  readonly #cache = new Map<DescService, unknown>();

  constructor(options: ClientsOptions, base?: Transport) {
    this.#options = options;
    this.namespace = options.namespace;
    this.#base = base ?? options.transport;
  }

  get<S extends DescService>(service: S): Client<S> {
    let client = this.#cache.get(service) as Client<S> | undefined;
    if (!client) {
      client = createClient(service, this.#callTransport());
      this.#cache.set(service, client);
    }
    return client;
  }

  /** The same connection, other namespace header: for --all-namespaces walks. */
  inNamespace(namespace: string): Clients {
    if (namespace === this.namespace) return this;
    return new Clients({ ...this.#options, namespace }, this.#baseTransport());
  }

  /** Closes the connection this factory opened, if any; an injected transport is left alone. */
  close(): void {
    this.#owned?.close();
    this.#owned = undefined;
  }

  #baseTransport(): Transport {
    if (!this.#base) {
      this.#owned = unixTransport(this.#options.address);
      this.#base = this.#owned;
    }
    return this.#base;
  }

  #callTransport(): Transport {
    this.#transport ??= withCallDefaults(this.#baseTransport(), {
      namespace: this.namespace,
      timeoutMs: this.#options.timeoutMs,
      trace: this.#options.trace,
    });
    return this.#transport;
  }
}
