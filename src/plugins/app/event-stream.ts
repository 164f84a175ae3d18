import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { RedisEventStream } from '../../adapters/redis/event-stream.ts';
import { CountingThrottle } from '../../log-throttle.ts';

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

/**
 * How often each of the two lines is said at most. A Redis at its maxmemory (noeviction) refuses
 * some appends and takes others as trimming and expiries free memory: each refusal and each append
 * after it was a line, five pairs within 30 ms (a user test).
 */
const LOG_INTERVAL_MS = 10_000;

export default fp<EventStreamOptions>(
  async (app, options) => {
    /** Events missed since the last line that said how many. */
    let untold = 0;
    const tellMissed = (): void => {
      if (untold === 0) return;
      app.log.error({ missed_events: untold }, `event stream: appending works again; ${untold} event(s) published while Redis was unreachable or refused writes are not in the stream (event_stream_missed_events counts them)`);
      untold = 0;
    };
    const failures = new CountingThrottle(LOG_INTERVAL_MS, () => Date.now());
    // A recovery not told at once (within the interval of the last) is told at the interval's end.
    const recoveries = new CountingThrottle(LOG_INTERVAL_MS, () => Date.now(), tellMissed);
    const stream = new RedisEventStream(options.client, {
      keyPrefix: options.keyPrefix,
      maxLen: app.core.config.eventsStream.maxLen,
      onError: (error, context) => {
        const failed = failures.take();
        if (failed !== undefined) app.log.error({ err: error, failed }, `event stream: ${context} failed`);
      },
      onMissed: (count) => {
        untold += count;
        if (recoveries.take() !== undefined) tellMissed();
      },
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
