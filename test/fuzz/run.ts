import fc from 'fast-check';
import { sequenceArb } from './generators.ts';
import { AnswerLog, createEnvironment, firstDifference, FuzzViolation, onMemory, runSequence, Stats, type Failure } from './harness.ts';

/**
 * The fuzzer's driver, shared by the test suite (test/fuzz/api.fuzz.test.ts) and `make fuzz`
 * (scripts/fuzz.ts): fast-check draws sequences of steps from a seed and runs each against a
 * fresh app until the wanted number of requests has been sent. Sequences are drawn in chunks,
 * chunk i with seed `seed + i`, so a failure does not end the run and each one can be replayed
 * alone with its chunk's seed and fast-check's path.
 */

export interface FuzzOptions {
  seed: number;
  /** Requests to send at least. */
  requests: number;
  /** Steps per sequence (one fresh app each). */
  sequenceLength: number;
  /** Sequences per fast-check run (one chunk). */
  chunkRuns?: number;
  /** Replays one counterexample: fast-check's path within the chunk of `seed`. */
  path?: string | undefined;
  /** Let fast-check shrink a failing sequence (each attempt builds an app: slow). */
  shrink?: boolean;
  /** Stop after this many failing chunks. */
  maxFailures?: number;
  /** Called after every request with the statistics so far. */
  onRequest?: (stats: Stats) => void;
  /**
   * Runs each sequence's app on this Redis (STORE=redis) instead of memory, then runs the sequence
   * again on memory and fails it at the first request whose answer differs (ids and trace ids aside).
   */
  redisUrl?: string | undefined;
}

export interface FuzzReport {
  seed: number;
  /** The back end each sequence's app ran on. */
  store: 'memory' | 'redis';
  stats: Stats;
  failures: Failure[];
  operations: string[];
  durationMs: number;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const env = await createEnvironment(options.sequenceLength, options.redisUrl);
  const stats = new Stats();
  const failures: Failure[] = [];
  const chunkRuns = options.chunkRuns ?? 8;
  const maxFailures = options.maxFailures ?? 10;
  const sequences = sequenceArb(env.generator);
  /** On Redis: the same sequences on memory, whose answers Redis' must match. */
  const twin = env.redis === undefined ? undefined : onMemory(env);
  // A request in about 24 steps of 25 (the rest move the clock).
  const perRun = Math.max(1, Math.floor((options.sequenceLength * 24) / 25));
  try {
    for (let chunk = 0; stats.requests < options.requests && failures.length < maxFailures; chunk++) {
      const seed = (options.seed + chunk) | 0;
      const runs = options.path === undefined ? Math.min(chunkRuns, Math.max(1, Math.ceil((options.requests - stats.requests) / perRun))) : 1;
      // Shrinking re-runs sequences: those do not count.
      let counting = true;
      const scratch = new Stats();
      const property = fc.asyncProperty(sequences, async (steps) => {
        const answers = twin === undefined ? undefined : new AnswerLog();
        const result = await runSequence(env, steps, counting ? stats : scratch, counting ? () => options.onRequest?.(stats) : undefined, answers?.observe);
        let failure = result.failure;
        if (failure === undefined && twin !== undefined && answers !== undefined) {
          const onMemoryAnswers = new AnswerLog();
          const again = await runSequence(twin, steps, new Stats(), undefined, onMemoryAnswers.observe);
          failure = again.failure === undefined ? firstDifference(onMemoryAnswers, answers) : { ...again.failure, violations: again.failure.violations.map((v) => `on memory: ${v}`) };
          if (failure === undefined && counting) {
            stats.comparedWithMemory += answers.requests;
            stats.webhooksCompared += answers.webhooks;
          }
        }
        if (failure !== undefined) {
          counting = false;
          throw new FuzzViolation(failure);
        }
      });
      const details = await fc.check(property, {
        seed,
        numRuns: runs,
        ...(options.path === undefined ? {} : { path: options.path }),
        endOnFailure: options.shrink !== true,
      });
      if (details.failed) {
        const error = details.errorInstance;
        const failure: Failure =
          error instanceof FuzzViolation
            ? error.failure
            : { step: -1, route: '?', request: { method: '?', url: '?', headers: {}, payload: '' }, status: 0, response: '', violations: [`the fuzzer itself failed: ${String((error as Error | undefined)?.stack ?? error)}`], tags: [], log: [] };
        failures.push({ ...failure, seed, path: details.counterexamplePath ?? undefined });
      }
      if (options.path !== undefined) break;
    }
  } finally {
    await env.close();
  }
  return { seed: options.seed, store: env.config.store.backend, stats, failures, operations: env.model.operations.map((op) => op.key), durationMs: Date.now() - started };
}

/** A failure as a reader needs it: what was sent, what came back, what broke, and how to replay it. */
export function formatFailure(failure: Failure): string {
  const lines = [
    `✗ ${failure.violations.join('\n  ')}`,
    `  replay: FUZZ_SEED=${String(failure.seed)} FUZZ_PATH=${failure.path ?? '?'} make fuzz   (step ${failure.step} of the sequence)`,
    `  route: ${failure.route}${failure.tags.length > 0 ? `   mutations: ${failure.tags.join(', ')}` : ''}`,
    `  request: ${failure.request.method} ${failure.request.url}`,
    `  headers: ${JSON.stringify(failure.request.headers)}`,
  ];
  if (failure.request.payload !== '') lines.push(`  body: ${JSON.stringify(failure.request.payload)}`);
  lines.push(`  answer: ${failure.status} ${failure.response}`);
  for (const line of failure.log) lines.push(`  log: ${line.trim()}`);
  return lines.join('\n');
}

/** Counts by status and by route, as `make fuzz` prints them. */
export function formatReport(report: FuzzReport): string {
  const { stats } = report;
  const lines: string[] = [];
  const seconds = report.durationMs / 1000;
  lines.push(`${stats.requests} requests in ${stats.sequences} sequences (${stats.advances} clock advances), ${seconds.toFixed(1)} s, ${Math.round(stats.requests / Math.max(seconds, 0.001))} requests/s, seed ${report.seed}, store ${report.store}`);
  lines.push('', 'by status:');
  for (const [status, count] of [...stats.byStatus].sort((a, b) => a[0] - b[0])) lines.push(`  ${status}  ${String(count).padStart(8)}  ${((100 * count) / Math.max(1, stats.requests)).toFixed(1).padStart(5)} %`);
  lines.push('', 'by route:');
  const width = Math.max(...[...stats.byRoute.keys()].map((k) => k.length), 10);
  for (const key of [...report.operations, '(no such route)']) {
    const statuses = stats.byRoute.get(key);
    const total = statuses === undefined ? 0 : [...statuses.values()].reduce((a, b) => a + b, 0);
    const parts = statuses === undefined ? 'never requested' : [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    lines.push(`  ${key.padEnd(width)}  ${String(total).padStart(7)}  ${parts}`);
  }
  lines.push('', 'by mutation (requests carrying it):');
  lines.push(`  ${[...stats.byTag].sort((a, b) => b[1] - a[1]).map(([tag, n]) => `${tag} ${n}`).join(', ')}`);
  if (report.store === 'redis') lines.push('', `answers compared with the same sequences on memory: ${stats.comparedWithMemory}, and ${stats.webhooksCompared} webhooks the receiver got`);
  if (stats.redisKeysRemoved > 0) lines.push('', `Redis keys the sequences left, removed after each: ${stats.redisKeysRemoved}`);
  if (stats.idempotentFourXx > 0) lines.push('', `4xx answers stored under their Idempotency-Key for replay (the one allowed change): ${stats.idempotentFourXx}`);
  if (stats.undocumented.size > 0) {
    lines.push('', 'statuses answered but not listed for the operation (a failure unless the document says them of every path: a 405, a path made another, a body to an operation that takes none):');
    for (const [route, set] of stats.undocumented) lines.push(`  ${route}: ${[...set].sort().join(', ')}`);
  }
  lines.push('', report.failures.length === 0 ? 'no property failed' : `${report.failures.length} failure(s):`);
  for (const failure of report.failures) lines.push(formatFailure(failure));
  return lines.join('\n');
}
