import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { failingRows, formatIntentTable, intentLoad, median, serviceEnv, type IntentRow } from './bench-intents.ts';
import { createBench, getJson, loadAverage, machine, metricLines, positiveInt, ROOT, roundOrder, runBench, StartError, stopChild, type ServerChild } from './bench-support.ts';

/**
 * `make bench-faults`: what the fault hooks cost `make bench`'s load (issue 15 "Performance":
 * with no rules ≤ 3 % of throughput, with 100 rules that do not match ≤ 10 %). Three servers of
 * the service, each in its own child, as `make bench` runs it (LOG_LEVEL=info):
 *  A. FAULTS_ENABLED=false: no fault hook on any route (the baseline);
 *  B. fault injection on, no rules (the default deployment);
 *  C. fault injection on, FAULTS_FILE with 100 rules that never match the benchmark's requests,
 *     written to the run's scratch folder: other dialects and methods, other literal routes,
 *     patterns and globs, and the intent route itself with a header or a body range that fails,
 *     with every action type.
 * The same `POST /v1/sim/intent` load as `make bench` (scripts/bench-intents.ts) hits them in
 * interleaved rounds, the order rotated each round (A B C, B C A, C A B, …), so a busy machine's
 * drift hits all three alike; the ratios B/A and C/A are taken per round and their median is
 * compared with the targets. Afterwards C's /metrics must show no rule hit (the rules really did not match), and the matcher's own cost
 * without HTTP is printed (scripts/bench-faults-matcher.ts).
 *
 * Exit codes: 0 when the report was produced (targets missed or not), 1 when a server failed to
 * start, more than 0.1 % of requests failed, or a rule applied.
 *
 * Environment: BENCH_DURATION_S (default 10), BENCH_ROUNDS (default 5), BENCH_CONNECTIONS
 * (default 50), BENCH_FAULTS_ITERATIONS (the matcher benchmark's, default 1,000,000).
 */

const DURATION_S = positiveInt('BENCH_DURATION_S', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const CONNECTIONS = positiveInt('BENCH_CONNECTIONS', 50);
const WARMUP_S = 2;
const MAX_FAILURE_RATE = 0.001;
const RULES = 100;
const TARGET_NO_RULES = 0.97;
const TARGET_100_RULES = 0.9;

const bench = createBench('bench-faults');
const { progress } = bench;
const { prepare, measure } = intentLoad(bench, { connections: CONNECTIONS, durationS: DURATION_S, warmupS: WARMUP_S });

const ACTIONS = [
  { type: 'error', status: 503, retry_after_seconds: 2 },
  { type: 'latency', distribution: 'lognormal', params: { p50: 200, p99: 2000 } },
  { type: 'outcome', failure_code: 'insufficient_funds' },
  { type: 'timeout', ms: 3000 },
  { type: 'response_lost' },
];
const OTHER_ROUTES: Array<[string, string, string]> = [
  ['fluxpay', 'GET', '/api/v1/orders/:orderId'],
  ['payment-server-v2', 'POST', '/api/v2/payments'],
  ['bookings', 'POST', '/payments/execute'],
  ['payment-service', 'POST', '/api/v1/payments/**'],
];

/**
 * Rule `i` of the 100: a fifth of each kind, none of them matching `POST /v1/sim/intent` with
 * `{"reservation_id":"res_bench_<n>","amount":1000}` and autocannon's headers.
 */
function nonMatchingRule(i: number): Record<string, unknown> {
  const action = ACTIONS[i % ACTIONS.length];
  const id = `bench-${String(i).padStart(3, '0')}`;
  switch (i % 5) {
    case 0: {
      // Another dialect's route: the request's dialect/method bucket never holds it.
      const [dialect, method, route] = OTHER_ROUTES[(i / 5) % OTHER_ROUTES.length] as [string, string, string];
      return { id, match: { dialect, method, route }, action };
    }
    case 1:
      // The intent route itself, for one test case's header only.
      return { id, match: { dialect: 'native', method: 'POST', route: '/v1/sim/intent', headers: { 'x-test-case': `case-${i}` } }, action };
    case 2:
      // The intent route, for big amounts only (the benchmark sends 1000).
      return { id, match: { route: '/v1/sim/intent', body: { amount: { gte: 1_000_000 + i } } }, probability: 0.5, action };
    case 3:
      // A pattern or a glob of other native paths (each a path some request can take, as a rule's
      // must be since 2026-12-05): one failing regular expression test per request.
      return { id, match: { method: 'POST', route: i % 2 === 0 ? `/v1/sim/intents/pay_${i}*/:action` : `/v1/sim/intents/pay_${i}*/**` }, action };
    default:
      // No route: checked on every request, failing on a header prefix and a body prefix.
      return { id, match: { headers: { 'x-tenant': { prefix: `tenant-${i}` } }, body: { reservation_id: { prefix: `res_other_${i}` } } }, count: 10, action };
  }
}

/** The service's environment with fault injection as given, and no FAULTS_* of the caller's. */
function faultsEnv(settings: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = serviceEnv('info', settings);
  if (settings.FAULTS_FILE === undefined) delete env.FAULTS_FILE;
  return env;
}

async function checkRules(server: ServerChild): Promise<void> {
  const { data } = await getJson<{ data: unknown[] }>(`${server.url}/v1/sim/rules`);
  if (data.length !== RULES) throw new StartError(`${server.name}: GET /v1/sim/rules lists ${data.length} rules, not ${RULES}`);
}

/** scripts/bench-faults-matcher.ts: the matcher's own cost, without HTTP, in a process of its own. */
async function runMatcherBench(): Promise<number> {
  bench.signal.throwIfAborted();
  progress('matcher: node scripts/bench-faults-matcher.ts');
  const child = spawn(process.execPath, ['scripts/bench-faults-matcher.ts'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  bench.track(child);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return signal === null ? (code ?? 1) : 1;
}

async function main(): Promise<number> {
  const loadBefore = loadAverage();
  const rulesFile = path.join(bench.scratch, 'faults.json');
  writeFileSync(rulesFile, JSON.stringify({ rules: Array.from({ length: RULES }, (_, i) => nonMatchingRule(i)) }, null, 2));
  const targets: Array<[string, NodeJS.ProcessEnv]> = [
    ['A faults off', faultsEnv({ FAULTS_ENABLED: 'false' })],
    ['B 0 rules', faultsEnv({ FAULTS_ENABLED: 'true' })],
    [`C ${RULES} rules`, faultsEnv({ FAULTS_ENABLED: 'true', FAULTS_FILE: rulesFile })],
  ];
  const servers: ServerChild[] = [];
  for (const [label, env] of targets) servers.push(await prepare(label, 'src/server.ts', env));
  await checkRules(servers[2] as ServerChild);
  const rounds: IntentRow[][] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const row: IntentRow[] = [];
    for (const i of roundOrder(round, servers.length)) {
      const server = servers[i] as ServerChild;
      row[i] = await measure(`${targets[i]?.[0] ?? server.name} #${round}`, server);
    }
    rounds.push(row);
  }
  const hits = await metricLines(servers[2] as ServerChild, 'fault_rule_hits_total{');
  for (const server of servers) await stopChild(server.child);
  bench.signal.throwIfAborted();
  const loadAfter = loadAverage();

  const ratio = (of: number) => rounds.map((row) => (row[of] as IntentRow).rps / (row[0] as IntentRow).rps);
  const noRules = ratio(1);
  const manyRules = ratio(2);
  const verdict = (value: number, target: number) => `(target ≥ ${target.toFixed(2)}) ${value >= target ? 'met' : 'MISSED'}`;
  console.log('');
  console.log('paysim bench-faults: POST /v1/sim/intent, a fresh reservation_id per request, amount 1000 (as make bench)');
  console.log(`machine: ${machine()}`);
  console.log(`load average (1/5/15 min): ${loadBefore} before, ${loadAfter} after`);
  console.log(`load: autocannon, ${CONNECTIONS} connections; ${ROUNDS} rounds of ${DURATION_S} s per target, A/B/C in an order rotated each round (A B C, B C A, C A B: none always loaded last), after a ${WARMUP_S} s warm-up each`);
  console.log('note: autocannon runs on the same cores as the server under test; every target is the service at LOG_LEVEL=info');
  console.log(`A: FAULTS_ENABLED=false (no fault hooks); B: fault injection on, no rules; C: fault injection on, ${RULES} rules from FAULTS_FILE that do not match`);
  console.log('');
  console.log(formatIntentTable(rounds.flat()));
  console.log('');
  for (const [name, index] of [['A', 0], ['B', 1], ['C', 2]] as const) {
    const rps = median(rounds.map((row) => (row[index] as IntentRow).rps));
    const p99 = median(rounds.map((row) => (row[index] as IntentRow).p99));
    console.log(`${name}: ${rps.toFixed(0)} intents/s, p99 ${p99.toFixed(2)} ms (medians of the rounds)`);
  }
  console.log(`ratio B/A per round: ${noRules.map((r) => r.toFixed(3)).join(', ')}`);
  console.log(`ratio C/A per round: ${manyRules.map((r) => r.toFixed(3)).join(', ')}`);
  console.log(`no rules: B/A = ${median(noRules).toFixed(3)} (median of the rounds; cost 1 − B/A = ${((1 - median(noRules)) * 100).toFixed(1)} % of throughput) ${verdict(median(noRules), TARGET_NO_RULES)}`);
  console.log(`${RULES} non-matching rules: C/A = ${median(manyRules).toFixed(3)} (median of the rounds; cost 1 − C/A = ${((1 - median(manyRules)) * 100).toFixed(1)} % of throughput) ${verdict(median(manyRules), TARGET_100_RULES)}`);
  console.log('');

  const failing = failingRows(rounds.flat(), MAX_FAILURE_RATE);
  const matcherCode = await runMatcherBench();
  if (hits !== '') {
    console.error(`bench-faults: rules applied to the benchmark's requests, so C did not measure rules that do not match:\n${hits}`);
    return 1;
  }
  if (failing.length > 0) {
    console.error(`bench-faults: more than ${MAX_FAILURE_RATE * 100} % of requests failed for: ${failing.map((r) => r.label).join(', ')}`);
    return 1;
  }
  if (matcherCode !== 0) {
    console.error(`bench-faults: scripts/bench-faults-matcher.ts exited with ${matcherCode}`);
    return 1;
  }
  return 0;
}

await runBench(bench, main);
