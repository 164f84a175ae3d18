import fp from 'fastify-plugin';

/**
 * Shutdown in the order an orchestrator expects: readiness fails first (so load balancers stop
 * sending), pending work is drained while the server still answers, then the server closes and
 * in-flight requests finish.
 */

export type Drainer = (budgetMs: number) => Promise<void>;

/**
 * Producers (pending decisions, payments in flight) drain first, then delivery: the webhooks
 * that producers' last decisions create are then in the dispatcher's queue when it drains.
 */
export type DrainPhase = 'producers' | 'delivery';

export interface Lifecycle {
  /** Set when the drain starts: readiness fails, the server still answers. */
  shuttingDown: boolean;
  /** Set when the server closes, after the drain: new requests get 503 in their dialect's shape. */
  closing: boolean;
  /** Registers work to finish before the server closes (pending decisions, queued webhooks). */
  onDrain(drainer: Drainer, phase?: DrainPhase): void;
  /** Marks the service not ready and runs the drainers, phase by phase, within `budgetMs` of real time in all. */
  drain(budgetMs: number): Promise<void>;
}

const PHASES: readonly DrainPhase[] = ['producers', 'delivery'];

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export default fp(
  async (app) => {
    const drainers: Array<{ drainer: Drainer; phase: DrainPhase }> = [];
    const lifecycle: Lifecycle = {
      shuttingDown: false,
      closing: false,
      onDrain: (drainer, phase = 'producers') => void drainers.push({ drainer, phase }),
      async drain(budgetMs) {
        lifecycle.shuttingDown = true;
        const deadline = Date.now() + budgetMs;
        for (const phase of PHASES) {
          const left = Math.max(0, deadline - Date.now());
          // A drainer that fails (its store is unreachable) is reported; the others and the close go on.
          await Promise.all(
            drainers.filter((d) => d.phase === phase).map((d) => d.drainer(left).catch((error: unknown) => app.log.error({ err: error, phase }, 'shutdown: draining failed; closing without it'))),
          );
        }
      },
    };
    app.decorate('lifecycle', lifecycle);
    app.addHook('preClose', async () => {
      lifecycle.shuttingDown = true;
      lifecycle.closing = true;
    });
  },
  { name: 'paysim-lifecycle' },
);
