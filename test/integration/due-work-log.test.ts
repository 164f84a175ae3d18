import { describe, expect, it } from 'vitest';
import { PROCESS_JOB } from '../../src/core/bookings/inbox.ts';
import { MAX_ATTEMPTS } from '../../src/core/scheduler.ts';
import { buildTestApp } from '../helpers/app.ts';

/*
 * What the log says of due work whose record another replica has not stored yet (an inbox event
 * whose job ran before the payment wrote it): the expected end of a race, retried, said at debug
 * until its last attempt. Before 2026-12-03 each attempt was an error line with its stack.
 */
describe('due work that finds its record not stored yet', () => {
  it('is retried with a debug line per attempt, and its last attempt is a warning without a stack, saying what it means (before 2026-12-07 an error: h78a, after a replica killed between a booking payment\'s job and its event)', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const t = await buildTestApp({ LOG_LEVEL: 'debug' }, { logs });
    try {
      await t.app.core.scheduler.schedule(PROCESS_JOB, 'evt_never_written', t.clock.now());
      // Attempts 100 ms × 2^n apart: all of them within a minute.
      for (let i = 0; i < 60; i++) await t.clock.advance(1_000);
      const about = logs.filter((l) => l.job_key === 'evt_never_written');
      expect(about.map((l) => [l.level, l.msg])).toEqual([
        ...Array.from({ length: MAX_ATTEMPTS - 1 }, () => ['debug', 'due work found its record not stored yet; it will be retried']),
        ['warn', 'due work given up: its record was never stored (the replica that scheduled it stopped before writing it, or the record was evicted); nothing was done'],
      ]);
      expect(about.at(-1)).toMatchObject({ job_kind: PROCESS_JOB });
      expect(about.at(-1)).not.toHaveProperty('err');
    } finally {
      await t.app.close();
    }
  });
});
