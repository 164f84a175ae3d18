// First: an older Node.js is told on one line before any module that needs a newer one loads.
import './node-version.ts';
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.ts';

/**
 * The process: configuration and logger, then either the service (src/serve.ts: tracing, the app,
 * signals and `listen`) or, with CLUSTER_WORKERS > 1, the primary of that many workers
 * (src/cluster.ts), each of which is this file again and serves. Exit codes: 0 after a clean
 * shutdown, 1 for a bad configuration or a failed start; either of those is told on one stderr line.
 */

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

// The rest is loaded once the configuration is known to be good: a bad one is told without
// reading the whole tree first (at load 6 on this 2-core VM a bad TIME_SCALE took 5.6 s to be
// told before 2026-12-04, most of it loading the app, the tracing and the Redis client). A
// cluster's primary serves nothing, so it loads none of the app: its workers do, each (before
// 2026-12-08 the primary loaded it too, 1.5–2.5 s before it forked the first worker).
if (config.clusterWorkers > 1 && cluster.isPrimary) {
  const [{ runPrimary }, { createLogger }] = await Promise.all([import('./cluster.ts'), import('./logger.ts')]);
  runPrimary(config.clusterWorkers, createLogger(config));
} else {
  const [{ serve }, { createLogger }] = await Promise.all([import('./serve.ts'), import('./logger.ts')]);
  // A worker's lines say which worker wrote them (the primary's lines say what happened to workers).
  const logger = createLogger(config, cluster.worker?.id);
  // node:cluster ends a worker whose primary is gone (killed) at once, in its own 'disconnect'
  // listener: said first, so that it is not silent (a user test: the workers vanished without a line).
  if (cluster.isWorker) {
    process.prependOnceListener('disconnect', () => {
      if (cluster.worker?.exitedAfterDisconnect !== true) logger.warn('the primary is gone: this worker exits now, without a drain (its pending work waits on Redis for the next start or another replica)');
    });
  }
  await serve(config, logger);
}
