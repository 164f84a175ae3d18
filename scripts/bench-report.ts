import { execFile } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { systemClock } from '../src/core/clock.ts';
import { createRandom } from '../src/core/random.ts';
import { positiveInt } from './bench-support.ts';

/**
 * The run report (`GET /v1/sim/report`, issue 15) over many payments: fills a real app's intent
 * store through IntentService (BENCH_REPORT_INTENTS, default 100,000; every 10th with a webhook
 * delivery logged and finished), then fetches the whole report over HTTP (curl) as JSON and as CSV and
 * prints, for each: the time to the last byte, the bytes, the heap used before and at its peak
 * while the report streamed (sampled every 5 ms), and the event loop's worst delay meanwhile, which
 * is what other requests would wait (p99 and max). JSON runs twice: the first run includes the
 * JIT's warm-up. The heap peak counts garbage not yet collected (chunks already sent), not only
 * what is held. Figures only: nothing is asserted.
 * Run: `make bench-report` (`node --expose-gc scripts/bench-report.ts`).
 */

const COUNT = positiveInt('BENCH_REPORT_INTENTS', 100_000);
const MIB = 2 ** 20;
const gc = globalThis.gc;
const run = promisify(execFile);

const config = loadConfig({ WEBHOOK_SECRET: 'bench-report-secret-0123456789', STORE_MAX_INTENTS: String(Math.max(COUNT, 100_000)), DEFAULT_APPROVE_DELAY_MS: '0', DEFAULT_FAIL_DELAY_MS: '0', LOG_LEVEL: 'warn' });
const app = await buildApp({ config, clock: systemClock, random: createRandom(42), logger: false });
await app.ready();

const fillStart = performance.now();
const { intents } = app.core;
for (let i = 0; i < COUNT; i++) {
  const intent = await intents.create({ reservationId: `rsv_${i}`, amount: 1000 + (i % 1000), currency: i % 3 === 0 ? 'USD' : 'KRW', scenario: i % 10 === 9 ? 'fail' : 'approve' });
  if (i % 10 === 0) {
    const now = Date.now();
    await app.stores.deliveries.insert({
      id: `whd_bench_${String(i).padStart(8, '0')}`,
      eventId: `evt_bench_${i}`,
      type: 'payment.approved',
      url: 'http://127.0.0.1:9/hooks',
      subject: { kind: 'intent', id: intent.id },
      test: false,
      body: '{}',
      extraHeaders: {},
      schemes: ['standard'],
      status: 'delivered',
      attempts: [{ at: now, statusCode: 200, durationMs: 3, error: null }],
      seriesStart: 0,
      nextAttemptAt: null,
      failureReason: null,
      createdAt: now,
      updatedAt: now,
    });
  }
}
// Let every zero-delay decision run.
while ((await app.stores.intents.counts()).PENDING > 0) await new Promise((resolve) => setTimeout(resolve, 50));
process.stdout.write(`filled ${COUNT} intents (${COUNT / 10} with a delivery) in ${((performance.now() - fillStart) / 1000).toFixed(1)} s\n\n`);

const address = await app.listen({ host: '127.0.0.1', port: 0 });

async function measure(accept: string): Promise<string> {
  gc?.();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 5);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const start = performance.now();
  // The client is curl, in a process of its own: the event loop measured is the server's alone.
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-H', `accept: ${accept}`, `${address}/v1/sim/report`]);
  const [status, size] = stdout.trim().split(' ');
  const bytes = Number(size);
  const seconds = (performance.now() - start) / 1000;
  loop.disable();
  clearInterval(sampler);
  return `| ${accept} | ${status} | ${seconds.toFixed(2)} s | ${(bytes / MIB).toFixed(1)} MiB | ${(before / MIB).toFixed(0)} MiB | ${(peak / MIB).toFixed(0)} MiB (+${((peak - before) / MIB).toFixed(0)}) | ${(loop.percentile(99) / 1e6).toFixed(0)} ms / ${(loop.max / 1e6).toFixed(0)} ms |`;
}

process.stdout.write(`GET /v1/sim/report, ${COUNT} intents\n\n| Accept | status | time to last byte | body | heap before | heap peak | event-loop delay p99 / max |\n|---|---|---|---|---|---|---|\n`);
for (const accept of ['application/json', 'text/csv', 'application/json']) process.stdout.write(`${await measure(accept)}\n`);
await app.close();
