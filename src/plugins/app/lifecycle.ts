import fp from 'fastify-plugin';

/**
 * Shutdown in the order an orchestrator expects: readiness fails first (so load balancers stop
 * sending), pending work is drained while the server still answers, then the server closes and
 * in-flight requests finish.
 */

export type Drainer = (budgetMs: number) => Promise<void>;

export interface Lifecycle {
  shuttingDown: boolean;
  /** Registers work to finish before the server closes (pending decisions, queued webhooks). */
  onDrain(drainer: Drainer): void;
  /** Marks the service not ready and runs every drainer within `budgetMs` of real time. */
  drain(budgetMs: number): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export default fp(
  async (app) => {
    const drainers: Drainer[] = [];
    const lifecycle: Lifecycle = {
      shuttingDown: false,
      onDrain: (drainer) => void drainers.push(drainer),
      async drain(budgetMs) {
        lifecycle.shuttingDown = true;
        await Promise.all(drainers.map((drainer) => drainer(budgetMs)));
      },
    };
    app.decorate('lifecycle', lifecycle);
  },
  { name: 'paysim-lifecycle' },
);
