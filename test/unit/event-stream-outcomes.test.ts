import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisEventStream } from '../../src/adapters/redis/event-stream.ts';
import { RedisNotServingError } from '../../src/adapters/redis/unavailable.ts';
import { EventBus, type DomainEvent } from '../../src/core/events.ts';

/**
 * How the outbound event stream counts an append that failed: missed when it never reached Redis,
 * uncertain when it was written and may run (a silent Redis, a time-out, a batch cut by a closing
 * connection). A stub client answers each script run with the error under test.
 */

function aborted(): Error {
  return Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' });
}

const CASES: Array<[string, () => Error, 'missed' | 'uncertain']> = [
  ['never sent (Redis found silent first)', () => new RedisNotServingError('Redis at x has not answered for 3 s', { sent: false }), 'missed'],
  ['sent, then Redis found silent', () => new RedisNotServingError('Redis at x has not answered for 3 s', { sent: true }), 'uncertain'],
  ['timed out (written, unanswered)', () => new Error('Command timed out'), 'uncertain'],
  ['the rest of a batch whose connection closed (written)', aborted, 'uncertain'],
  ['refused by a full Redis', () => new Error('OOM command not allowed when used memory > \'maxmemory\'.'), 'missed'],
  ['the client closed (not written)', () => new Error('Connection is closed.'), 'missed'],
];

describe('the event stream: missed or uncertain', () => {
  for (const [name, error, expected] of CASES) {
    it(`${name}: ${expected}`, async () => {
      const client = { evalsha: () => Promise.reject(error()) } as unknown as Redis;
      const stream = new RedisEventStream(client, { keyPrefix: 'p:', maxLen: 10, onError: () => undefined, onMissed: () => undefined });
      const bus = new EventBus();
      const detach = stream.attach(bus);
      for (const id of ['evt_1', 'evt_2']) bus.publish({ id, type: 'booking.event_processed', occurredAt: 0, event: { id } } as unknown as DomainEvent);
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect([stream.missed, stream.uncertain]).toEqual(expected === 'missed' ? [2, 0] : [0, 2]);
      detach();
    });
  }
});
