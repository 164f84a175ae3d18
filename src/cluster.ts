import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { serveCombinedMetrics } from './cluster-metrics.ts';
import { sameStopMessage, watchStopSignals } from './stop-signals.ts';

/**
 * CLUSTER_WORKERS=N (N > 1): this process is the primary of N workers sharing one port
 * (node:cluster; the primary accepts connections and hands them out in turn). Each worker is the
 * whole service (`server.ts` again), with the same configuration; the state they share lives in
 * Redis (the configuration refuses N > 1 with STORE=memory). The primary serves nothing itself:
 * it replaces a worker that dies, combines the workers' metrics for the one a scrape reached
 * (cluster-metrics.ts), forwards SIGTERM (and SIGINT, SIGHUP, SIGQUIT, SIGUSR2) to every
 * worker (each drains as a single process does) and exits when the last one has. A second signal is passed on too, and ends the workers at once, exit 1, as
 * it ends a single process.
 * @see issue 14 "Running several processes"
 */

/** A dead worker's replacement starts this much later, so a worker that keeps dying cannot spin the machine. */
export const REPLACE_DELAY_MS = 500;
/** Replacements that die before they serve (Redis away) wait twice as long each time, up to this. */
export const REPLACE_DELAY_MAX_MS = 10_000;

export function runPrimary(workers: number, logger: Logger): void {
  let stopping = false;
  /** Exit code once every worker has exited. */
  let exitCode = 0;
  const listened = new WeakSet<Worker>();
  /** Whether any worker has served yet: until then, a worker that cannot start means the start fails. */
  let served = false;
  /** Replacements in a row that died before they served. */
  let failedReplacements = 0;

  const start = (): void => {
    if (stopping) return;
    const worker = cluster.fork();
    closeUntakenConnections(worker);
    worker.once('online', () => logger.info({ worker: worker.id, worker_pid: worker.process.pid }, 'worker started'));
    worker.once('listening', () => {
      listened.add(worker);
      served = true;
      failedReplacements = 0;
    });
  };
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };

  cluster.on('exit', (worker, code, signal) => {
    const pid = worker.process.pid;
    if (!stopping && !served) {
      // The first start failed (a port taken, Redis unreachable): told on stderr by the worker; the start fails.
      logger.error({ worker: worker.id, worker_pid: pid, code, signal }, 'a worker could not start (its reason is on stderr); stopping the other workers');
      exitCode = 1;
      stop('SIGTERM');
    } else if (!stopping) {
      if (!listened.has(worker)) failedReplacements++;
      const delayMs = Math.min(REPLACE_DELAY_MAX_MS, REPLACE_DELAY_MS * 2 ** failedReplacements);
      // A worker stopped on its own (a SIGTERM sent to it alone: it drained and exited 0) is no crash
      // (a user test: it was logged as one, at error).
      if (code === 0 && signal === null) logger.warn({ worker: worker.id, worker_pid: pid, code, signal, restart_in_ms: delayMs }, 'a worker stopped (exit code 0); starting a new one');
      else logger.error({ worker: worker.id, worker_pid: pid, code, signal, restart_in_ms: delayMs }, 'a worker died; starting a new one');
      setTimeout(start, delayMs);
    }
    const alive = Object.values(cluster.workers ?? {}).filter((other) => other !== undefined && other !== worker && !other.isDead());
    if (stopping && alive.length === 0) {
      logger.info({ exit_code: exitCode }, 'every worker has exited');
      process.exit(exitCode);
    }
  });
  // The signals a single process shuts down on, passed on. A second one ends the workers at once,
  // as it ends a single process, and the primary exits 1 once they have (before 2026-12-04 it was
  // ignored, the workers' delay and drain running on, and any signal but SIGTERM and SIGINT ended
  // the primary and its workers without a drain). The same signal again within SAME_STOP_MS is the
  // same stop, not passed on: a process group's signal reaches the primary twice under GNU
  // `timeout`, and the workers get the group's too, which they tell as the same stop likewise.
  // SIGINT too: Ctrl-C in a terminal reaches every process of the group, and the copy passed on is
  // the same stop to a worker; sent to the primary alone (`kill -INT <pid>`), it reaches the workers
  // only so (before 2026-12-05 it was not passed on, and they served on: a review).
  watchStopSignals((signal, kind) => {
    if (kind === 'same') {
      logger.info({ signal }, sameStopMessage(signal));
      return;
    }
    if (kind === 'second' || stopping) {
      exitCode = 1;
      logger.error({ signal }, `second ${signal}: passed to every worker, which exits at once`);
    } else {
      logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, `shutting down: ${signal} is passed to every worker`);
    }
    stop(signal);
  });
  // A worker's /metrics answers every worker's, combined here. Messages in the structured clone's
  // serialization, not JSON: a metric's NaN stays NaN (JSON made it null, then 0 once combined).
  // The workers inherit this process's environment, `.env` already read into it: without the
  // option again, which said `.env not found` once more per worker (a user test).
  cluster.setupPrimary({ serialization: 'advanced', execArgv: withoutEnvFiles(process.execArgv) });
  serveCombinedMetrics(logger, (worker) => listened.has(worker));
  logger.info({ workers }, `starting ${workers} workers on one port`);
  for (let i = 0; i < workers; i++) start();
}

/** What node:cluster's round robin sends a worker with a connection, and what the worker answers. */
interface ClusterMessage {
  cmd?: unknown;
  act?: unknown;
  seq?: unknown;
  ack?: unknown;
}

/**
 * Closes the connections the primary handed to `worker` that it had not taken when it died.
 * node:cluster's round robin keeps its own copy of a connection until the worker acknowledges it
 * (`newconn`, answered with `ack`), and forgets it when the worker dies first (a `kill -9` or a crash
 * while the hand-over is under way): that copy stayed open for as long as the primary ran, so the
 * client waited for an answer for ever (a user test: one request per `kill -9` under load, held
 * until the client's own time-out) and the primary kept one more descriptor. Closed, the client
 * sees its connection close without an answer, as for the requests the dead worker held.
 * @see https://github.com/nodejs/node/blob/v24.0.0/lib/internal/cluster/round_robin_handle.js (handoff)
 */
export function closeUntakenConnections(worker: Worker): void {
  const child = worker.process;
  const untaken = new Map<number, { close(): void }>();
  const send = child.send.bind(child) as (...args: unknown[]) => boolean;
  child.send = ((...args: unknown[]) => {
    const [message, handle] = args as [ClusterMessage | null, { close?: unknown } | undefined];
    if (message?.cmd === 'NODE_CLUSTER' && message.act === 'newconn' && typeof message.seq === 'number' && typeof handle?.close === 'function') {
      untaken.set(message.seq, handle as { close(): void });
    }
    return send(...args);
  }) as typeof child.send;
  child.on('internalMessage', (message: ClusterMessage | null) => {
    if (message?.cmd === 'NODE_CLUSTER' && typeof message.ack === 'number') untaken.delete(message.ack);
  });
  // At its exit, not its IPC channel's 'disconnect' (which comes after every message it sent is
  // read): a worker killed with a hand-off pending never disconnects (none within 3.5 s here, 2026-12-07).
  worker.once('exit', () => {
    for (const handle of untaken.values()) handle.close();
    untaken.clear();
  });
}

/** Node's options less those that read an env file (`--env-file=…`, `--env-file-if-exists …`), which the primary has read. */
export function withoutEnvFiles(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    if (/^--env-file(-if-exists)?=/.test(arg)) continue;
    if (arg === '--env-file' || arg === '--env-file-if-exists') {
      i++;
      continue;
    }
    kept.push(arg);
  }
  return kept;
}
