import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Fastify, { type FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.ts';
import type { IdempotencyStore } from '../../src/core/ports.ts';
import { nativeErrors } from '../../src/dialects/native/errors.ts';
import { idempotencyHooks } from '../../src/http/idempotency.ts';
import { LATE_SETTLES_MAX, LateSettles } from '../../src/http/late-settles.ts';
import { ManualClock } from '../helpers/manual-clock.ts';

function settles(clock: ManualClock): { late: LateSettles; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  return { late: new LateSettles(clock, log), logs };
}

describe('LateSettles', () => {
  it('tries a settle the store refused as unreachable again, 250 ms later, then at doubling intervals of at most 1 s, until it is taken', async () => {
    const clock = new ManualClock(0);
    const { late } = settles(clock);
    const tries: number[] = [];
    expect(
      late.add(() => {
        tries.push(clock.now());
        return tries.length < 7 ? Promise.reject(new StoreUnavailableError()) : Promise.resolve();
      }),
    ).toBe(true);
    await clock.advance(60_000);
    expect(tries).toEqual([250, 750, 1_750, 2_750, 3_750, 4_750, 5_750]);
    expect(late.pending).toBe(0);
  });

  it('gives up a settle that failed otherwise, with an error line; refuses more than LATE_SETTLES_MAX at once, with a warning', async () => {
    const clock = new ManualClock(0);
    const { late, logs } = settles(clock);
    late.add(() => Promise.reject(new Error('a bug')));
    await clock.advance(10_000);
    expect(late.pending).toBe(0);
    expect(logs.map((l) => [l.level, l.msg])).toEqual([[50, 'an Idempotency-Key settle tried again failed; the key stays begun until its TTL, or with Redis until this replica’s mark of life lapses']]);
    for (let i = 0; i < LATE_SETTLES_MAX; i++) expect(late.add(() => Promise.resolve())).toBe(true);
    expect(late.add(() => Promise.resolve())).toBe(false);
    expect(logs.at(-1)).toMatchObject({ level: 40, waiting: LATE_SETTLES_MAX });
    await clock.advance(250);
    expect(late.pending).toBe(0);
    expect(late.add(() => Promise.resolve())).toBe(true);
  });

  it('a close drops every settle still waiting, and takes no more', async () => {
    const clock = new ManualClock(0);
    const { late } = settles(clock);
    let tries = 0;
    late.add(() => {
      tries++;
      return Promise.reject(new StoreUnavailableError());
    });
    await clock.advance(250);
    late.close();
    expect([late.pending, late.add(() => Promise.resolve())]).toEqual([0, false]);
    await clock.advance(60_000);
    expect(tries).toBe(1);
  });
});

describe('a settle waiting to be tried again', () => {
  it('holds neither the request nor its body nor its reply', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const clock = new ManualClock(0);
    const late = new LateSettles(clock, pino({ level: 'silent' }));
    const refused = () => Promise.reject(new StoreUnavailableError());
    const store: IdempotencyStore = { begin: () => Promise.resolve({ kind: 'started', claim: 'c1' }), complete: refused, release: refused, abandon: () => undefined, stats: () => Promise.resolve({ size: 0, max: 0, bytes: 0 }), sweep: () => Promise.resolve(0) };
    const hooks = idempotencyHooks({ store, clock, lateSettles: late, shape: nativeErrors });
    const app = Fastify();
    let request: WeakRef<FastifyRequest> | undefined;
    app.post('/x', { preHandler: hooks.preHandler, onSend: hooks.onSend }, (req) => {
      request = new WeakRef(req);
      return Promise.resolve({ ok: true });
    });
    try {
      const res = await app.inject({ method: 'POST', url: '/x', payload: { big: 'x'.repeat(1_000_000) }, headers: { 'idempotency-key': 'k' } });
      expect([res.statusCode, late.pending]).toEqual([200, 1]);
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        gc();
      }
      expect(request?.deref()).toBeUndefined();
    } finally {
      late.close();
      await app.close();
    }
  });
});

describe('LateSettles while a try is out', () => {
  it('counts a settle whose call the store has not answered yet, towards pending and the cap', async () => {
    const clock = new ManualClock(0);
    const { late } = settles(clock);
    let answer: (() => void) | undefined;
    late.add(() => new Promise<void>((resolve) => (answer = resolve)));
    const advanced = clock.advance(250);
    await new Promise((resolve) => setImmediate(resolve));
    expect(late.pending).toBe(1);
    for (let i = 1; i < LATE_SETTLES_MAX; i++) late.add(() => Promise.resolve());
    expect(late.add(() => Promise.resolve())).toBe(false);
    answer?.();
    await advanced;
    await clock.advance(250);
    expect(late.pending).toBe(0);
  });
});
