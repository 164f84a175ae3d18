import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Aggregator } from 'prom-client';
import { CUMULATIVE, type MetricsJson } from './metrics-json.ts';

/**
 * /metrics with CLUSTER_WORKERS=N: the figures of every worker, combined, whichever worker the
 * scrape reached. Before 2026-12-06 a scrape of the shared port saw the worker that got its
 * connection only: Prometheus, which keeps its connection, read one worker's counts for good, about
 * 1/N of the traffic with no sign of it, and scrapes on new connections alternated between workers,
 * each drop read as a counter reset (a user test). The worker asks the primary, which asks every
 * worker for its metrics (as JSON, the namespaces' already added up) over the cluster's IPC channel
 * and combines them with prom-client's AggregatorRegistry, series by series: counts and histograms
 * added up, and what every worker reads the same from the shared store (Redis) taken once.
 * @see issue 14 "Running several processes"
 */

/**
 * How a metric is combined across workers where adding up is wrong (prom-client's own process
 * metrics carry theirs: the start time left out, the version once; their event-loop lag averaged,
 * which this takes the largest of instead).
 * Read from the shared store, the same in every worker: the largest. Readiness: the least (a worker
 * that is not ready makes the process not ready). A data loss is seen by every worker: the largest count
 * (see `WorkerMetricsBook`).
 */
const ACROSS_WORKERS: Readonly<Record<string, Aggregator>> = {
  ready: 'min',
  redis_data_losses_total: 'max',
  // Signed: the reading farthest from 0 (`farthestFromZero`), then taken once.
  ledger_imbalance: 'first',
  store_records: 'max',
  store_capacity: 'max',
  store_fill_ratio: 'max',
  seats_held: 'max',
  seats_reserved: 'max',
  webhook_queue_waiting: 'max',
  webhook_retries_waiting: 'max',
  fluxpay_outbox_depth: 'max',
  fluxpay_outbox_publish_lag_seconds: 'max',
  fluxpay_subscriptions: 'max',
  fluxpay_waiting_room_queue_length: 'max',
  // Each worker's own limit (the sum would hide one worker near it).
  process_max_fds: 'max',
  // The earliest start of the serving workers (prom-client leaves it out: an uptime panel,
  // time() - process_start_time_seconds, had nothing with CLUSTER_WORKERS > 1, h76b).
  process_start_time_seconds: 'min',
  // The slowest worker's event loop (prom-client averages them: one worker stalled by a long
  // request, or a busy core, showed as half its lag with two workers). Its min stays the least.
  nodejs_eventloop_lag_seconds: 'max',
  nodejs_eventloop_lag_mean_seconds: 'max',
  nodejs_eventloop_lag_stddev_seconds: 'max',
  nodejs_eventloop_lag_p50_seconds: 'max',
  nodejs_eventloop_lag_p90_seconds: 'max',
  nodejs_eventloop_lag_p99_seconds: 'max',
};

/** How long the primary waits for each worker's metrics; one that has not answered by then counts with its last (and is said so). */
export const WORKER_METRICS_TIMEOUT_MS = 3_000;
/** How long a worker waits for the primary's combined metrics. */
const COMBINED_METRICS_TIMEOUT_MS = WORKER_METRICS_TIMEOUT_MS + 2_000;

const REQUEST = 'paysim:metrics-request';
const COLLECT = 'paysim:metrics-collect';
const PART = 'paysim:metrics-part';
const REPLY = 'paysim:metrics-reply';

type Message =
  | { type: typeof REQUEST; id: number }
  | { type: typeof COLLECT; id: number }
  | { type: typeof PART; id: number; json?: MetricsJson; error?: string }
  | { type: typeof REPLY; id: number; text?: string; error?: string };

function isMessage<T extends Message['type']>(message: unknown, type: T): message is Extract<Message, { type: T }> {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type && typeof (message as { id?: unknown }).id === 'number';
}

/** One worker's metrics, each with the aggregator it is combined across workers with. */
function acrossWorkers(json: MetricsJson): MetricsJson {
  return json.map((metric) => {
    const aggregator = ACROSS_WORKERS[metric.name];
    return aggregator === undefined ? metric : { ...metric, aggregator };
  });
}

/**
 * Read from the shared store and signed, so neither the largest nor the least: the reading farthest
 * from 0 of each series (a worker whose read failed keeps its last reading, or 0 before its first:
 * the largest of 0 and -5 hid the imbalance from the dashboard's max(abs(…)), a review).
 */
const FARTHEST_FROM_ZERO: ReadonlySet<string> = new Set(['ledger_imbalance']);

/** The parts with each FARTHEST_FROM_ZERO series in every part set to its reading farthest from 0. */
function farthestFromZero(parts: MetricsJson[]): MetricsJson[] {
  const farthest = new Map<string, number>();
  const key = (name: string, labels: object) => `${name}${JSON.stringify(labels)}`;
  for (const part of parts) {
    for (const metric of part) {
      if (!FARTHEST_FROM_ZERO.has(metric.name)) continue;
      for (const { value, labels } of metric.values) {
        const k = key(metric.name, labels);
        if (Math.abs(value) > Math.abs(farthest.get(k) ?? 0)) farthest.set(k, value);
      }
    }
  }
  if (farthest.size === 0) return parts;
  return parts.map((part) => part.map((metric) => (FARTHEST_FROM_ZERO.has(metric.name) ? { ...metric, values: metric.values.map((v) => ({ ...v, value: farthest.get(key(metric.name, v.labels)) ?? v.value })) } : metric)));
}

/** The workers' metrics combined (the text exposition format). */
export function combineWorkerMetrics(parts: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(farthestFromZero(parts).map(acrossWorkers)).metrics();
}

/** Counts a worker takes with it when it exits (see `WorkerMetricsBook`). */
const GONE_WITH_THE_WORKER: ReadonlySet<string> = new Set(['fault_rule_hits_total', 'redis_data_losses_total']);

/**
 * Gauges that only grow, kept like counts when their worker exits: the README tells to compare
 * their values, and a sum that went down when a worker was replaced read as fewer events missed (h76b).
 */
const ONLY_GROWS: ReadonlySet<string> = new Set(['event_stream_missed_events']);

/**
 * What the primary keeps of the workers' metrics, so that a combined count does not go back (which
 * Prometheus reads as a reset, and counts the others' whole history as new: a review saw the
 * STORE_FULL and webhooks-dropped alerts fire on no new event): each worker's last part, counted for
 * it while it does not answer (stalled, busy, cut off), and the counts of the workers gone, added to
 * every combination from then on (as namespace-registry.ts keeps a reset namespace's). A worker's counts
 * made since the last scrape are lost with it; a fault rule's hits go with the worker (a rule
 * deleted takes its series, which counts kept here could not follow), and so do Redis' data losses,
 * which every worker counts: the largest of the serving workers' (`ACROSS_WORKERS`) starts again
 * from 0 once every worker that saw a loss is gone, as at a restart, and a new loss raises it (kept,
 * the largest stayed at 2 for a third loss; added up over time, one loss was counted once per
 * worker that saw it: two reviews).
 */
export class WorkerMetricsBook {
  readonly #last = new Map<number, MetricsJson>();
  /** The counts of the workers gone: one part each until the next combination adds them into one. */
  #retired: MetricsJson[] = [];
  /**
   * The workers gone (node:cluster never gives an id twice): an answer one sent before it exited is
   * in `#retired` already. Kept until a combination without them (a collection under way may hold them).
   */
  readonly #gone = new Set<number>();

  /** Worker `id` has exited: its last counts stay in every combination (at once: a collection under way counts them, and not its answer). */
  retire(id: number): void {
    const last = this.#last.get(id);
    this.#last.delete(id);
    this.#gone.add(id);
    const counts = (last ?? []).filter((metric) => (CUMULATIVE.has(String(metric.type)) || ONLY_GROWS.has(metric.name)) && !GONE_WITH_THE_WORKER.has(metric.name));
    if (counts.length > 0) this.#retired.push(counts);
  }

  /**
   * The workers asked, each with its part as read now (`undefined`: it sent none, and its last one
   * counts), with the counts of those gone, combined. A worker that exited meanwhile counts from its
   * retired counts only (a review: counted from both, its sums went 167, 228, then 210). Throws when
   * there is nothing to combine.
   */
  async combine(workers: Array<{ id: number; read: MetricsJson | undefined }>): Promise<string> {
    if (this.#retired.length > 1) {
      // Emptied before the sum, so that a worker retired meanwhile is kept after it.
      const retired = this.#retired;
      this.#retired = [];
      const added = await AggregatorRegistry.aggregate(retired.map(acrossWorkers)).getMetricsAsJSON();
      this.#retired = [added, ...this.#retired];
    }
    // Read after the sum, with nothing awaited from here on: a worker retired during it is in #gone.
    const parts: MetricsJson[] = [];
    for (const { id, read } of workers) {
      if (this.#gone.has(id)) continue;
      if (read !== undefined) this.#last.set(id, read);
      const part = read ?? this.#last.get(id);
      if (part !== undefined) parts.push(part);
    }
    const asked = new Set(workers.map(({ id }) => id));
    for (const id of this.#gone) if (!asked.has(id)) this.#gone.delete(id);
    if (parts.length === 0 && this.#retired.length === 0) throw new Error('no worker has sent its metrics yet');
    return combineWorkerMetrics([...this.#retired, ...parts]);
  }
}

/**
 * In the primary: answers each worker's request for the combined metrics, from the workers that
 * `serving` says serve (a replacement still starting has no app to read yet: asked, it would hold
 * every scrape for the time-out). Requests that come while a collection runs share it: each
 * collection resets prom-client's event-loop-delay histogram in every worker, and asks each worker
 * once (a review: 30 concurrent scrapes added 30 listeners per worker).
 */
export function serveCombinedMetrics(logger: Logger, serving: (worker: Worker) => boolean): void {
  const book = new WorkerMetricsBook();
  let nextCollect = 0;
  const pending = new Map<number, (part: MetricsJson | undefined) => void>();
  const ask = (worker: Worker): Promise<MetricsJson | undefined> =>
    new Promise((resolve) => {
      const id = nextCollect++;
      const done = (part: MetricsJson | undefined): void => {
        clearTimeout(timer);
        worker.off('exit', gone);
        pending.delete(id);
        resolve(part);
      };
      const gone = (): void => done(undefined);
      const timer = setTimeout(gone, WORKER_METRICS_TIMEOUT_MS);
      pending.set(id, done);
      worker.once('exit', gone);
      // With a callback, a worker whose channel just closed is an error here, not an 'error' event.
      worker.send({ type: COLLECT, id } satisfies Message, undefined, undefined, (error: Error | null) => {
        if (error !== null) done(undefined);
      });
    });

  /** One collection from every serving worker, combined. */
  const collect = async (): Promise<string> => {
    // A worker cut off (disconnected, not yet exited) counts with its last part.
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead() && serving(w));
    const read = await Promise.all(workers.map((worker) => (worker.isConnected() ? ask(worker) : undefined)));
    const missing = read.filter((part) => part === undefined).length;
    if (missing > 0) logger.warn({ workers: workers.length, missing }, `metrics: ${missing} of ${workers.length} workers sent no metrics (none within ${WORKER_METRICS_TIMEOUT_MS} ms, or they could not be read); their last counts are used`);
    return book.combine(workers.map((worker, i) => ({ id: worker.id, read: read[i] })));
  };
  let collecting: Promise<string> | undefined;

  cluster.on('exit', (worker) => book.retire(worker.id));
  cluster.on('message', (worker, message: unknown) => {
    if (isMessage(message, PART)) {
      if (message.error !== undefined) logger.warn({ worker: worker.id, err: { message: message.error } }, 'metrics: a worker could not read its metrics');
      pending.get(message.id)?.(message.json);
      return;
    }
    if (!isMessage(message, REQUEST)) return;
    collecting ??= collect().finally(() => (collecting = undefined));
    collecting.then(
      (text): Message => ({ type: REPLY, id: message.id, text }),
      (error: unknown): Message => ({ type: REPLY, id: message.id, error: error instanceof Error ? error.message : String(error) }),
    ).then((reply) => {
      if (worker.isConnected()) worker.send(reply, undefined, undefined, () => undefined);
    });
  });
}

/**
 * In a worker: answers the primary's requests for this worker's metrics (`collect`), and asks it
 * for every worker's combined. Returns what stops answering (the app's close).
 */
export function workerMetrics(collect: () => Promise<MetricsJson>): { combined: () => Promise<string>; stop: () => void } {
  let nextRequest = 0;
  const waiting = new Map<number, PromiseWithResolvers<string>>();
  // With a callback: a channel closed (the primary gone) is an error passed to it, not an 'error'
  // event on the process, which would end it.
  const send = (message: Message, onError: (error: Error) => void = () => undefined): void => {
    process.send?.(message, undefined, undefined, (error: Error | null) => {
      if (error !== null) onError(error);
    });
  };
  const onMessage = (message: unknown): void => {
    if (isMessage(message, COLLECT)) {
      collect().then(
        (json) => send({ type: PART, id: message.id, json }),
        (error: unknown) => send({ type: PART, id: message.id, error: error instanceof Error ? error.message : String(error) }),
      );
      return;
    }
    if (isMessage(message, REPLY)) {
      const waiter = waiting.get(message.id);
      if (waiter === undefined) return;
      if (message.text !== undefined) waiter.resolve(message.text);
      else waiter.reject(new Error(`the primary could not combine the workers' metrics: ${message.error ?? 'no reason given'}`));
    }
  };
  process.on('message', onMessage);
  const combined = async (): Promise<string> => {
    const id = nextRequest++;
    const reply = Promise.withResolvers<string>();
    waiting.set(id, reply);
    const timer = setTimeout(() => reply.reject(new Error(`the primary did not send the workers' combined metrics within ${COMBINED_METRICS_TIMEOUT_MS} ms`)), COMBINED_METRICS_TIMEOUT_MS);
    send({ type: REQUEST, id }, reply.reject);
    try {
      return await reply.promise;
    } finally {
      clearTimeout(timer);
      waiting.delete(id);
    }
  };
  return { combined, stop: () => process.off('message', onMessage) };
}
