import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { combineWorkerMetrics, WorkerMetricsBook } from '../../src/cluster-metrics.ts';

/**
 * How CLUSTER_WORKERS' metrics are combined across workers (src/cluster-metrics.ts): what each
 * worker counts is added up; what every worker reads the same from the shared store is taken once;
 * a worker that is not ready makes the whole not ready.
 * @see issue 14 "Running several processes"
 */

/** One worker's registry: its own counts, the shared store's records as it read them, its readiness and its data-loss count. */
async function worker(created: number, records: number, ready: 0 | 1, losses: number, durations: number[]) {
  const registry = new Registry();
  const registers = [registry];
  new Counter({ name: 'payment_intents_created_total', help: 'h', labelNames: ['scenario'], registers }).inc({ scenario: 'approve' }, created);
  new Gauge({ name: 'store_records', help: 'h', labelNames: ['store'], registers }).set({ store: 'intents' }, records);
  new Gauge({ name: 'webhook_queue_depth', help: 'h', registers }).set(created);
  new Gauge({ name: 'ready', help: 'h', registers }).set(ready);
  new Counter({ name: 'redis_data_losses_total', help: 'h', registers }).inc(losses);
  const histogram = new Histogram({ name: 'http_request_duration_seconds', help: 'h', buckets: [0.1, 1], registers });
  for (const d of durations) histogram.observe(d);
  return registry.getMetricsAsJSON();
}

describe('combineWorkerMetrics', () => {
  it('adds up counts, histograms and per-process gauges; takes the shared store’s figures and a data loss once; ready only when every worker is', async () => {
    const text = await combineWorkerMetrics([await worker(4, 10, 1, 1, [0.05, 0.5]), await worker(6, 10, 0, 1, [2])]);
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(samples).toEqual([
      'payment_intents_created_total{scenario="approve"} 10',
      'store_records{store="intents"} 10',
      'webhook_queue_depth 10',
      'ready 0',
      'redis_data_losses_total 1',
      'http_request_duration_seconds_bucket{le="0.1"} 1',
      'http_request_duration_seconds_bucket{le="1"} 2',
      'http_request_duration_seconds_bucket{le="+Inf"} 3',
      'http_request_duration_seconds_sum 2.55',
      'http_request_duration_seconds_count 3',
    ]);
  });

  it('one worker alone is its own figures', async () => {
    const text = await combineWorkerMetrics([await worker(4, 10, 1, 0, [])]);
    expect(text).toContain('\npayment_intents_created_total{scenario="approve"} 4\n');
    expect(text).toContain('\nready 1\n');
  });
});

/** A worker's counter of creates, its data losses, its fault-rule hits and a gauge of its own. */
async function counts(created: number, losses: number, hits: number, depth: number) {
  const registry = new Registry();
  const registers = [registry];
  new Counter({ name: 'payment_intents_created_total', help: 'h', registers }).inc(created);
  new Counter({ name: 'redis_data_losses_total', help: 'h', registers }).inc(losses);
  new Counter({ name: 'fault_rule_hits_total', help: 'h', labelNames: ['rule_id'], registers }).inc({ rule_id: 'fr_1' }, hits);
  new Gauge({ name: 'webhook_queue_depth', help: 'h', registers }).set(depth);
  return registry.getMetricsAsJSON();
}
const samples = (text: string) => text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));

describe('WorkerMetricsBook (the primary’s)', () => {
  it('a combined count never goes back: a worker gone leaves its last counts (not its gauges, nor fault-rule hits, which a deleted rule takes), a worker that sends nothing counts its last part', async () => {
    const book = new WorkerMetricsBook();
    const first = [book.part(1, await counts(10, 2, 3, 4)), book.part(2, await counts(5, 1, 1, 1))] as Array<Awaited<ReturnType<typeof counts>>>;
    expect(samples(await book.combine(first))).toEqual(['payment_intents_created_total 15', 'redis_data_losses_total 2', 'fault_rule_hits_total{rule_id="fr_1"} 4', 'webhook_queue_depth 5']);

    // Worker 1 killed, worker 3 its replacement; worker 2 stalled (sent nothing): its last part counts.
    book.retire(1);
    const second = [book.part(2, undefined), book.part(3, await counts(1, 1, 0, 2))] as Array<Awaited<ReturnType<typeof counts>>>;
    expect(samples(await book.combine(second))).toEqual(['payment_intents_created_total 16', 'redis_data_losses_total 2', 'fault_rule_hits_total{rule_id="fr_1"} 1', 'webhook_queue_depth 3']);

    // Two more gone: their counts are added into one part, and stay.
    book.retire(2);
    book.retire(3);
    expect(samples(await book.combine([book.part(4, await counts(0, 0, 0, 0)) as Awaited<ReturnType<typeof counts>>]))).toEqual([
      'payment_intents_created_total 16',
      'redis_data_losses_total 2',
      'fault_rule_hits_total{rule_id="fr_1"} 0',
      'webhook_queue_depth 0',
    ]);
    // A worker that never sent a part leaves nothing.
    book.retire(9);
    expect(samples(await book.combine([book.part(4, await counts(1, 0, 0, 0)) as Awaited<ReturnType<typeof counts>>]))[0]).toBe('payment_intents_created_total 17');
  });
});
