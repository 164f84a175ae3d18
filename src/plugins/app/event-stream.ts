import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { RedisEventStream } from '../../adapters/redis/event-stream.ts';

/**
 * The outbound event stream (STORE=redis only): every event of the bus also goes to the capped
 * stream `<prefix>events` for other systems' consumer groups, and the events it missed while
 * Redis was unreachable or refused writes are a gauge.
 * @see issue 14 "Outbound event stream"
 */

export interface EventStreamOptions {
  client: Redis;
  keyPrefix: string;
}

export default fp<EventStreamOptions>(
  async (app, options) => {
    const stream = new RedisEventStream(options.client, {
      keyPrefix: options.keyPrefix,
      maxLen: app.core.config.eventsStream.maxLen,
      onError: (error, context) => app.log.error({ err: error }, `event stream: ${context} failed`),
      onMissed: (count) =>
        app.log.error({ missed_events: count }, `event stream: appending works again; ${count} event(s) published while Redis was unreachable or refused writes are not in the stream (event_stream_missed_events counts them)`),
    });
    const detach = stream.attach(app.core.bus);
    new Gauge({
      name: 'event_stream_missed_events',
      help: 'Domain events not appended to the outbound event stream because Redis was unreachable or refused writes, since start.',
      registers: [app.metrics.registry],
      collect() {
        this.set(stream.missed);
      },
    });
    app.addHook('onClose', async () => detach());
  },
  { name: 'paysim-event-stream', dependencies: ['paysim-core', 'paysim-metrics'] },
);
