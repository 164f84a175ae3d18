import fp from 'fastify-plugin';
import { createMemoryStores } from '../../adapters/memory/index.ts';
import type { Config } from '../../config.ts';
import type { Stores } from '../../core/ports.ts';

/**
 * The back end behind the store ports, chosen once at start: this process's memory (the
 * default). Tests may pass stores of their own (a contract suite's adapter, say).
 */

export interface StoresOptions {
  config: Config;
  stores?: Stores | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    stores: Stores;
  }
}

export default fp<StoresOptions>(
  async (app, options) => {
    app.decorate('stores', options.stores ?? createMemoryStores(options.config));
  },
  { name: 'paysim-stores' },
);
