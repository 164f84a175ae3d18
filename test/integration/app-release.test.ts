import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.ts';

/**
 * A closed app is garbage: nothing global keeps it alive. Tests build an app per case and the
 * fuzzer one per sequence (8,000 for `make fuzz`), so a retained app is a leak of ~1.7 MB each;
 * `make fuzz` ran out of heap at 52,000 requests when prom-client's GC observer kept every
 * app's registry, and through it every app.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function closedApp(): Promise<WeakRef<object>> {
  const t = await buildTestApp();
  // Some traffic, so the metrics, stores and scheduler have state.
  expect((await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'r-gc', amount: 100 } })).statusCode).toBe(200);
  expect((await t.app.inject({ url: '/metrics' })).statusCode).toBe(200);
  await t.app.close();
  return new WeakRef(t.app);
}

describe('after close', () => {
  it('the app is collected', async () => {
    const refs = [await closedApp(), await closedApp(), await closedApp()];
    for (let i = 0; i < 10 && refs.some((r) => r.deref() !== undefined); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      gc();
    }
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true, true]);
  });
});
