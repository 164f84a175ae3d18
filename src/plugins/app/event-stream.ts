import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { RedisEventStream } from '../../adapters/redis/event-stream.ts';
import { isRedisUnavailable, wasWritten } from '../../adapters/redis/unavailable.ts';
import { unavailableReason } from '../../core/errors.ts';

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
      // Redis unavailable: the events are lost to the stream, so an error, but one line for the
      // outage saying how many and why (no stack: it is the same for every append), and the count
      // of the whole outage once appending works again; anything else keeps its stack.
      onError: (error, context, count) => {
        if (!isRedisUnavailable(error)) return app.log.error({ err: error }, `event stream: ${context} failed`);
        const written = wasWritten(error);
        app.log.error({ [written ? 'uncertain_events' : 'missed_events']: count, redis_error: unavailableReason(error) }, notAppendedMessage(count, written));
      },
      onMissed: (count, uncertain) => app.log.error({ missed_events: count, uncertain_events: uncertain }, missedMessage(count, uncertain)),
    });
    const detach = stream.attach(app.core.bus);
    new Gauge({
      name: 'event_stream_missed_events',
      help: 'Domain events not appended to the outbound event stream because Redis was unreachable or refused writes, since start (not those sent as Redis went silent, which may be in it).',
      registers: [app.metrics.registry],
      collect() {
        this.set(stream.missed);
      },
    });
    app.addHook('onClose', async () => detach());
  },
  { name: 'paysim-event-stream', dependencies: ['paysim-core', 'paysim-metrics'] },
);

/**
 * The first append that failed for want of Redis (once per outage): its events are not in the
 * stream (or, `written`, sent as Redis went silent, may be), nor are those published until it works again.
 */
export function notAppendedMessage(count: number, written: boolean): string {
  const these = written ? `${count} event(s) were sent to Redis as it went silent, unanswered (they are in the stream if Redis runs what it received)` : `${count} event(s) could not be appended`;
  return `event stream: ${these}: Redis is unreachable or refuses writes; the events published until appending works again are not in the stream either (event_stream_missed_events counts them; the count is told when it works again)`;
}

/** What an outage of the stream cost, once appending works again: the events not appended, and those whose append was sent as Redis went silent (they may be in it). */
export function missedMessage(count: number, uncertain: number): string {
  const missed = `${count} event(s) published while Redis was unreachable or refused writes are not in the stream (event_stream_missed_events counts them)`;
  const maybe = `${uncertain} event(s) were sent to Redis as it went silent, unanswered: they are in the stream if Redis ran what it had received when it answered again`;
  return `event stream: appending works again; ${count === 0 ? maybe : uncertain === 0 ? missed : `${missed}, and ${maybe}`}`;
}
