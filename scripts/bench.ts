import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { failingRows, formatIntentTable, intentLoad, median, serviceEnv, type IntentRow } from './bench-intents.ts';
import { createBench, loadAverage, machine, positiveInt, ROOT, roundOrder, runBench, stopChild, type ServerChild } from './bench-support.ts';

/**
 * `make bench`: throughput and latency of `POST /v1/sim/intent`, the service against a bare Fastify
 * server with the same schemas, then the memory cost of intents (scripts/bench-memory.ts).
 *
 * Each target runs in its own child process; they are loaded one at a time, in turn, for
 * BENCH_ROUNDS rounds, so the two cores are shared only by autocannon and the one server under
 * load, and each round compares targets measured within seconds of each other. Server output
 * goes to a descriptor on /dev/null, not a pipe: a pipe would make this process part of the
 * logging cost being measured.
 *
 * Exit codes: 0 when the report was produced (targets missed or not), 1 when a server failed to
 * start or more than 0.1 % of requests failed, since then the figures mean nothing.
 *
 * The fault hooks' share of this figure: `make bench-faults` (scripts/bench-faults.ts).
 *
 * Environment: BENCH_DURATION_S (default 10), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 50).
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const WARMUP_S = 2;
const MAX_FAILURE_RATE = 0.001;
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 20;

const bench = createBench('bench');
const { progress } = bench;
const { prepare, measure } = intentLoad(bench, { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S });

/** scripts/bench-memory.ts: bytes per record of each store, then (`--full`) the whole process at the default bounds, in a process of its own. */
async function runMemoryBench(): Promise<number> {
  for (const args of [[], ['--full']]) {
    bench.signal.throwIfAborted();
    progress(`memory: node --expose-gc scripts/bench-memory.ts ${args.join(' ')}`);
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', 'scripts/bench-memory.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    bench.track(child);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    if (signal !== null || code !== 0) return code ?? 1;
  }
  return 0;
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  const targets: Array<[string, string, NodeJS.ProcessEnv]> = [
    ['bare fastify', 'scripts/bench-bare-server.ts', { ...process.env }],
    ['service', 'src/server.ts', serviceEnv('info')],
    ['service (LOG_LEVEL=warn)', 'src/server.ts', serviceEnv('warn')],
    // The console records every decision and webhook attempt for its charts even when no page is
    // open (issue 13: it must cost nothing measurable): the same service without it.
    ['service (CONSOLE_ENABLED=false)', 'src/server.ts', { ...serviceEnv('info'), CONSOLE_ENABLED: 'false' }],
  ];
  const servers: ServerChild[] = [];
  for (const [label, script, env] of targets) servers.push(await prepare(label, script, env));
  // Rounds of each target in turn, servers kept up: this machine's speed drifts over tens of
  // seconds, so each round's service is compared with the bare server of the same round.
  const rounds: IntentRow[][] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const row: IntentRow[] = [];
    for (const i of roundOrder(round, servers.length)) {
      const server = servers[i] as ServerChild;
      row[i] = await measure(`${targets[i]?.[0] ?? server.name} #${round}`, server);
    }
    rounds.push(row);
  }
  for (const server of servers) await stopChild(server.child);
  // An interrupted last run returns early with partial figures: do not report them.
  bench.signal.throwIfAborted();
  const loadAfter = loadAverage();

  const ratios = rounds.map(([bare, service]) => (service as IntentRow).rps / (bare as IntentRow).rps);
  const quietRatios = rounds.map(([, service, quiet]) => (quiet as IntentRow).rps / (service as IntentRow).rps);
  const consoleRatios = rounds.map(([, service, , noConsole]) => (service as IntentRow).rps / (noConsole as IntentRow).rps);
  const ratio = median(ratios);
  const p99 = median(rounds.map(([, service]) => (service as IntentRow).p99));
  const verdict = (met: boolean) => (met ? 'met' : 'MISSED');
  console.log('');
  console.log('paysim bench: POST /v1/sim/intent, a fresh reservation_id per request, amount 1000');
  console.log(`machine: ${machine()}`);
  console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
  console.log(`load: autocannon, ${CONNECTIONS} connections; ${ROUNDS} rounds of ${DURATION_S} s per target, targets in an order rotated each round (so none is always loaded last), after a ${WARMUP_S} s warm-up each`);
  console.log('note: autocannon runs on the same cores as the server under test');
  console.log('"service" is the default configuration (LOG_LEVEL=info, one log line per request, stdout on /dev/null)');
  console.log('');
  console.log(formatIntentTable(rounds.flat()));
  console.log('');
  console.log(`ratio service/bare per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
  console.log(`ratio service/bare = ${ratio.toFixed(2)} (median of the rounds; target ≥ ${TARGET_RATIO.toFixed(2)}) ${verdict(ratio >= TARGET_RATIO)}`);
  console.log(`service p99 = ${p99.toFixed(2)} ms (median of the rounds; target < ${TARGET_P99_MS} ms) ${verdict(p99 < TARGET_P99_MS)}`);
  console.log(`request logging: at LOG_LEVEL=warn the service does ${median(quietRatios).toFixed(2)}× the req/s of LOG_LEVEL=info (median of the rounds)`);
  console.log(`console (nobody watching): the service with it does ${median(consoleRatios).toFixed(2)}× the req/s of CONSOLE_ENABLED=false (per round: ${consoleRatios.map((r) => r.toFixed(2)).join(', ')})`);
  console.log('');

  const failing = failingRows(rounds.flat(), MAX_FAILURE_RATE);
  const memoryCode = await runMemoryBench();
  if (failing.length > 0) {
    console.error(`bench: more than ${MAX_FAILURE_RATE * 100} % of requests failed for: ${failing.map((r) => r.label).join(', ')}`);
    return 1;
  }
  if (memoryCode !== 0) {
    console.error(`bench: scripts/bench-memory.ts exited with ${memoryCode}`);
    return 1;
  }
  return 0;
}

await runBench(bench, main);
