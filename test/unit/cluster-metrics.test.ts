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

  it('the ledger’s imbalance, read from the shared store and signed, is the reading farthest from 0 (a worker that has not read it yet says 0)', async () => {
    const ledger = async (value: number) => {
      const registry = new Registry();
      new Gauge({ name: 'ledger_imbalance', help: 'h', registers: [registry] }).set(value);
      return registry.getMetricsAsJSON();
    };
    const imbalance = async (...values: number[]) => (await combineWorkerMetrics(await Promise.all(values.map(ledger)))).split('\n').find((l) => l.startsWith('ledger_imbalance '));
    expect(await imbalance(0, -5)).toBe('ledger_imbalance -5');
    expect(await imbalance(-5, 0)).toBe('ledger_imbalance -5');
    expect(await imbalance(3, -5)).toBe('ledger_imbalance -5');
    expect(await imbalance(0, 0)).toBe('ledger_imbalance 0');
  });

  it('the event loop’s lag is the slowest worker’s (prom-client averages it), its least the least', async () => {
    const loop = async (lag: number) => {
      const registry = new Registry();
      const registers = [registry];
      // As prom-client's default metrics declare them.
      new Gauge({ name: 'nodejs_eventloop_lag_p99_seconds', help: 'h', registers, aggregator: 'average' }).set(lag);
      new Gauge({ name: 'nodejs_eventloop_lag_seconds', help: 'h', registers, aggregator: 'average' }).set(lag);
      new Gauge({ name: 'nodejs_eventloop_lag_min_seconds', help: 'h', registers, aggregator: 'min' }).set(lag);
      return registry.getMetricsAsJSON();
    };
    expect(samples(await combineWorkerMetrics([await loop(0.01), await loop(0.5)]))).toEqual(['nodejs_eventloop_lag_p99_seconds 0.5', 'nodejs_eventloop_lag_seconds 0.5', 'nodejs_eventloop_lag_min_seconds 0.01']);
  });

  it('the process start time is the earliest of the serving workers’ (prom-client leaves it out, and an uptime panel had nothing: h76b)', async () => {
    const started = async (at: number) => {
      const registry = new Registry();
      // As prom-client's default metrics declare it.
      new Gauge({ name: 'process_start_time_seconds', help: 'h', registers: [registry], aggregator: 'omit' }).set(at);
      return registry.getMetricsAsJSON();
    };
    expect(samples(await combineWorkerMetrics([await started(1_765_000_100), await started(1_765_000_000)]))).toEqual(['process_start_time_seconds 1765000000']);
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
  it('a combined count does not go back: a worker gone leaves its last counts (not its gauges, nor fault-rule hits, which a deleted rule takes), a worker that sends nothing counts its last part', async () => {
    const book = new WorkerMetricsBook();
    expect(samples(await book.combine([{ id: 1, read: await counts(10, 2, 3, 4) }, { id: 2, read: await counts(5, 2, 1, 1) }]))).toEqual([
      'payment_intents_created_total 15',
      'redis_data_losses_total 2',
      'fault_rule_hits_total{rule_id="fr_1"} 4',
      'webhook_queue_depth 5',
    ]);

    // Worker 1 killed, worker 3 its replacement; worker 2 stalled (sent nothing): its last part counts.
    book.retire(1);
    expect(samples(await book.combine([{ id: 2, read: undefined }, { id: 3, read: await counts(1, 0, 0, 2) }]))).toEqual([
      'payment_intents_created_total 16',
      'redis_data_losses_total 2',
      'fault_rule_hits_total{rule_id="fr_1"} 1',
      'webhook_queue_depth 3',
    ]);

    // Two more gone: their counts are added into one part, and stay; a worker that never sent a part leaves nothing.
    book.retire(2);
    book.retire(3);
    book.retire(9);
    expect(samples(await book.combine([{ id: 4, read: await counts(1, 0, 0, 0) }]))).toEqual(['payment_intents_created_total 17', 'redis_data_losses_total 0', 'fault_rule_hits_total{rule_id="fr_1"} 0', 'webhook_queue_depth 0']);
  });

  it('event_stream_missed_events, a gauge that only grows, keeps a worker’s count when it exits, as a count does (it went down: h76b)', async () => {
    const missed = async (value: number) => {
      const registry = new Registry();
      new Gauge({ name: 'event_stream_missed_events', help: 'h', registers: [registry] }).set(value);
      return registry.getMetricsAsJSON();
    };
    const book = new WorkerMetricsBook();
    expect(samples(await book.combine([{ id: 1, read: await missed(7) }, { id: 2, read: await missed(3) }]))).toEqual(['event_stream_missed_events 10']);
    book.retire(1);
    expect(samples(await book.combine([{ id: 2, read: await missed(3) }, { id: 3, read: await missed(0) }]))).toEqual(['event_stream_missed_events 10']);
  });

  it('Redis’ data losses, which every worker counts: the largest count of the serving workers, a loss once whichever workers saw it and when; back to 0 once the workers that saw them are gone, as at a restart, and a new loss raises it', async () => {
    const book = new WorkerMetricsBook();
    const losses = async (workers: Array<[number, number | undefined]>) =>
      samples(await book.combine(await Promise.all(workers.map(async ([id, n]) => ({ id, read: n === undefined ? undefined : await counts(0, n, 0, 0) }))))).find((l) => l.startsWith('redis_data_losses_total'));
    expect(await losses([[1, 2], [2, 2]])).toBe('redis_data_losses_total 2');
    // A loss seen by worker 1 at this scrape, by worker 2 at the next (their checks apart), by a stalled worker later: once (a review: a running total counted it twice).
    expect(await losses([[1, 3], [2, 2]])).toBe('redis_data_losses_total 3');
    expect(await losses([[1, 3], [2, undefined]])).toBe('redis_data_losses_total 3');
    expect(await losses([[1, 3], [2, 3]])).toBe('redis_data_losses_total 3');
    book.retire(1);
    book.retire(2);
    // Their replacements saw none: 0 (a reset, which increase() does not take for a loss); a loss raises it (kept, the largest stayed at 3).
    expect(await losses([[3, 0], [4, 0]])).toBe('redis_data_losses_total 0');
    expect(await losses([[3, 1], [4, 0]])).toBe('redis_data_losses_total 1');
  });

  it('a worker that exited while the collection waited for the others counts from its retired counts only, not from its answer too', async () => {
    const book = new WorkerMetricsBook();
    await book.combine([{ id: 1, read: await counts(5, 0, 0, 0) }, { id: 2, read: await counts(5, 0, 0, 0) }]);
    const answered = await counts(7, 0, 0, 0);
    book.retire(2);
    // Before, 12 (5 retired, 7 answered), then 10 at the next scrape.
    expect(samples(await book.combine([{ id: 1, read: await counts(6, 0, 0, 0) }, { id: 2, read: answered }]))[0]).toBe('payment_intents_created_total 11');
    expect(samples(await book.combine([{ id: 1, read: await counts(6, 0, 0, 0) }]))[0]).toBe('payment_intents_created_total 11');
  });

  it('a worker retired while the retired counts are being added up is kept after them', async () => {
    const book = new WorkerMetricsBook();
    for (const id of [1, 2, 3]) await book.combine([{ id, read: await counts(id, 0, 0, 0) }]);
    book.retire(1);
    book.retire(2);
    const combining = book.combine([]);
    book.retire(3);
    // Before, the sum was kept and worker 3 lost: 3, then 3.
    expect(samples(await combining)[0]).toBe('payment_intents_created_total 6');
    expect(samples(await book.combine([]))[0]).toBe('payment_intents_created_total 6');
  });
});
