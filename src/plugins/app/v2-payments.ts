import fp from 'fastify-plugin';
import { createRandom } from '../../core/random.ts';
import { V2PaymentService } from '../../core/v2/service.ts';
import { drainDecisions } from './core.ts';

/**
 * Payments of the Payment Server v3 API (issue 10): the service, built once per app from the core
 * and its store port; its share of the shutdown drain (decisions not run yet) and its TTL sweep.
 * The `/api/v2` dialect uses `app.v2Payments`.
 */

declare module 'fastify' {
  interface FastifyInstance {
    v2Payments: V2PaymentService;
  }
}

export default fp(
  async (app) => {
    const { config, clock, ids, bus, stores, scheduler } = app.core;
    const service = new V2PaymentService({
      store: stores.v2Payments,
      scheduler,
      bus,
      clock,
      // Its own generator (seeded with RANDOM_SEED when set): v2 traffic must not shift the
      // sequence of random intent outcomes that a seed makes reproducible.
      random: createRandom(config.randomSeed),
      ids,
      settings: {
        defaultScenario: config.v2.defaultScenario,
        completeDelayMs: config.v2.completeDelayMs,
        delayDelayMs: config.scenarios.delayDelayMs,
        randomApproveRate: config.scenarios.randomApproveRate,
        mix: config.scenarios.mix,
      },
    });
    app.decorate('v2Payments', service);
    app.core.onSweep((now) => service.sweep(now));

    app.lifecycle.onDrain(drainDecisions(app, service, { field: 'pending_v2_payments', idsField: 'payment_ids', done: 'every v2 payment was decided', left: 'v2 payments still undecided' }));
  },
  { name: 'paysim-v2-payments', dependencies: ['paysim-core', 'paysim-lifecycle'] },
);
