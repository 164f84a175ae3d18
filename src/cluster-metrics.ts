import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Aggregator } from 'prom-client';
import type { MetricsJson } from './plugins/app/namespaces.ts';

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
 * metrics carry theirs: the event-loop lag averaged, the start time left out, the version once).
 * Read from the shared store, the same in every worker: the largest. Readiness: the least (a worker
 * that is not ready makes the process not ready). A data loss is seen by every worker: once.
 */
const ACROSS_WORKERS: Readonly<Record<string, Aggregator>> = {
  ready: 'min',
  redis_data_losses_total: 'max',
  ledger_imbalance: 'max',
  store_records: 'max',
  store_capacity: 'max',
  store_fill_ratio: 'max',
  seats_held: 'max',
  seats_reserved: 'max',
  webhook_queue_waiting: 'max',
  fluxpay_outbox_depth: 'max',
  fluxpay_outbox_publish_lag_seconds: 'max',
  fluxpay_subscriptions: 'max',
  fluxpay_waiting_room_queue_length: 'max',
};

/** How long the primary waits for each worker's metrics; one that has not answered by then is left out (and said so). */
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

/** The workers' metrics combined (the text exposition format). */
export function combineWorkerMetrics(parts: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts.map(acrossWorkers)).metrics();
}

/**
 * In the primary: answers each worker's request for the combined metrics, from the workers that
 * `serving` says serve (a replacement still starting has no app to read yet: asked, it would hold
 * every scrape for the time-out).
 */
export function serveCombinedMetrics(logger: Logger, serving: (worker: Worker) => boolean): void {
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

  cluster.on('message', (worker, message: unknown) => {
    if (isMessage(message, PART)) {
      if (message.error !== undefined) logger.warn({ worker: worker.id, err: { message: message.error } }, 'metrics: a worker could not read its metrics; left out of this scrape');
      pending.get(message.id)?.(message.json);
      return;
    }
    if (!isMessage(message, REQUEST)) return;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead() && w.isConnected() && serving(w));
    void (async () => {
      const parts = await Promise.all(workers.map(ask));
      const answered = parts.filter((part): part is MetricsJson => part !== undefined);
      if (answered.length < workers.length) logger.warn({ workers: workers.length, answered: answered.length }, `metrics: ${workers.length - answered.length} of ${workers.length} workers sent no metrics (none within ${WORKER_METRICS_TIMEOUT_MS} ms, or they could not be read); this scrape counts the others only`);
      let reply: Message;
      try {
        reply = { type: REPLY, id: message.id, text: await combineWorkerMetrics(answered) };
      } catch (error) {
        reply = { type: REPLY, id: message.id, error: error instanceof Error ? error.message : String(error) };
      }
      if (worker.isConnected()) worker.send(reply, undefined, undefined, () => undefined);
    })();
  });
}

/**
 * In a worker: answers the primary's requests for this worker's metrics (`collect`), and asks it
 * for every worker's combined. Returns what stops answering (the app's close).
 */
export function workerMetrics(collect: () => Promise<MetricsJson>): { combined: () => Promise<string>; stop: () => void } {
  let nextRequest = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
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
      waiting.delete(message.id);
      if (message.text !== undefined) waiter.resolve(message.text);
      else waiter.reject(new Error(`the primary could not combine the workers' metrics: ${message.error ?? 'no reason given'}`));
    }
  };
  process.on('message', onMessage);
  const combined = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const id = nextRequest++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the primary did not send the workers' combined metrics within ${COMBINED_METRICS_TIMEOUT_MS} ms`));
      }, COMBINED_METRICS_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      send({ type: REQUEST, id }, (error) => waiting.get(id)?.reject(error));
    });
  return { combined, stop: () => process.off('message', onMessage) };
}
