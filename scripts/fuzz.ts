import { formatReport, runFuzz } from '../test/fuzz/run.ts';
import type { Stats } from '../test/fuzz/harness.ts';
import { hasRedisServer, startRedisServer, type RedisServerProcess } from '../test/helpers/redis-server.ts';

/**
 * `make fuzz`: the property-based fuzzer of test/fuzz, at length. It sends FUZZ_REQUESTS generated
 * requests (default 200,000) to the whole app in process, prints a progress line every few
 * seconds on stderr, then the counts by status, route and mutation, and every property that broke
 * with the line that replays it.
 *
 * Environment:
 *   FUZZ_REQUESTS  requests to send at least (default 200000)
 *   FUZZ_SEED      the seed (default: the time; printed, so any run can be repeated)
 *   FUZZ_PATH      with FUZZ_SEED: replay one failure (fast-check's path, printed with it)
 *   FUZZ_SHRINK=1  shrink a failing sequence to a smaller one (slow: each try builds an app)
 *   FUZZ_STEPS     steps per sequence, one fresh app each (default 25)
 *   FUZZ_STORE     memory (default) or redis: each sequence's app on a private redis-server that
 *                  this script starts on a free port and stops (Debian package redis-server)
 *
 * Exit codes: 0 when no property broke, 1 when one did, 2 for bad settings.
 */

function intFrom(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    process.stderr.write(`${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})\n`);
    process.exit(2);
  }
  return value;
}

const requests = intFrom('FUZZ_REQUESTS', 200_000, 1);
const seed = intFrom('FUZZ_SEED', Date.now() % 2_147_483_647, 0);
const sequenceLength = intFrom('FUZZ_STEPS', 25, 1);
const path = process.env.FUZZ_PATH === undefined || process.env.FUZZ_PATH === '' ? undefined : process.env.FUZZ_PATH;
const shrink = process.env.FUZZ_SHRINK === '1';
const store = process.env.FUZZ_STORE === undefined || process.env.FUZZ_STORE === '' ? 'memory' : process.env.FUZZ_STORE;
if (store !== 'memory' && store !== 'redis') {
  process.stderr.write(`FUZZ_STORE must be memory or redis (got ${JSON.stringify(store)})\n`);
  process.exit(2);
}
if (store === 'redis' && !hasRedisServer) {
  process.stderr.write('FUZZ_STORE=redis needs redis-server on PATH: apt-get install -y --no-install-recommends redis-server (Debian package redis-server)\n');
  process.exit(2);
}

const started = Date.now();
let lastLine = 0;
const progress = (stats: Stats, final = false): void => {
  const now = Date.now();
  if (!final && now - lastLine < 5_000) return;
  lastLine = now;
  const seconds = (now - started) / 1000;
  const fiveXx = [...stats.byStatus].filter(([status]) => status >= 500).reduce((sum, [, n]) => sum + n, 0);
  const rate = Math.round(stats.requests / Math.max(seconds, 0.001));
  const left = rate > 0 ? Math.max(0, Math.ceil((requests - stats.requests) / rate)) : 0;
  process.stderr.write(
    `fuzz: ${stats.requests}/${requests} requests (${((100 * stats.requests) / requests).toFixed(1)} %), ${stats.sequences} sequences, ${rate} req/s, 5xx ${fiveXx}, ${seconds.toFixed(0)} s elapsed${final ? '' : `, about ${left} s left`}\n`,
  );
};

const redis: RedisServerProcess | undefined = store === 'redis' ? await startRedisServer() : undefined;
process.stderr.write(`fuzz: ${path === undefined ? `${requests} requests` : `replaying path ${path}`}, seed ${seed}, ${sequenceLength} steps per sequence, store ${store}${redis === undefined ? '' : ` (redis-server on port ${redis.port})`}\n`);
let report;
try {
  report = await runFuzz({ seed, requests, sequenceLength, path, shrink, redisUrl: redis?.url, onRequest: (stats) => progress(stats) });
} finally {
  await redis?.stop();
}
progress(report.stats, true);
process.stdout.write(`${formatReport(report)}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
