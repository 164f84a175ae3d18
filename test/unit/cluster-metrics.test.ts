import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { combineWorkerMetrics } from '../../src/cluster-metrics.ts';

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
