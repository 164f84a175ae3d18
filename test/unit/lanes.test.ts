import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { afterEach, describe, expect, it } from 'vitest';
import { Lanes } from '../../src/webhooks/lanes.ts';

/** The per-origin lanes in front of the dispatcher's worker pool (src/webhooks/lanes.ts). */
describe('Lanes', () => {
  const seen: unknown[] = [];
  const record = (reason: unknown): void => void seen.push(reason);
  afterEach(() => {
    process.off('unhandledRejection', record);
    seen.length = 0;
  });

  it('a pool cleared at a close with tasks of a lane still queued in it rejects nothing unhandled; the lane goes on', async () => {
    process.on('unhandledRejection', record);
    const pool = new PQueue({ concurrency: 1 });
    const ran: string[] = [];
    let release = (): void => undefined;
    const lanes = new Lanes<string>(pool, 3, async (item) => {
      ran.push(item);
      if (item === 'first') await new Promise<void>((resolve) => (release = resolve));
    });
    for (const item of ['first', 'second', 'third']) lanes.push('https://a.example', item);
    // One runs; two wait in the pool (the lane let three through).
    expect([ran, pool.size, lanes.waiting]).toEqual([['first'], 2, 0]);
    pool.clear();
    release();
    await sleep(20);
    expect(seen).toEqual([]);
    expect(ran).toEqual(['first']);
    // The lane counted the dropped ones out: a new item runs.
    lanes.push('https://a.example', 'after');
    await sleep(20);
    expect(ran).toEqual(['first', 'after']);
  });

  it('an error of the run itself is not swallowed', async () => {
    process.on('unhandledRejection', record);
    const lanes = new Lanes<string>(new PQueue({ concurrency: 1 }), 1, () => Promise.reject(new Error('boom')));
    lanes.push('https://a.example', 'x');
    await sleep(20);
    expect(seen.map((e) => (e as Error).message)).toEqual(['boom']);
  });
});
