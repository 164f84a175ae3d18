import { MemoryFaultRuleStore } from '../src/adapters/memory/fault-rules.ts';
import { RuleMatcher, type MatchInput } from '../src/core/faults/matcher.ts';
import type { FaultRule } from '../src/core/faults/model.ts';
import { FaultRuleService } from '../src/core/faults/service.ts';
import { parseRule } from '../src/core/faults/validation.ts';
import { systemClock } from '../src/core/clock.ts';
import { createRandom } from '../src/core/random.ts';
import { positiveInt, table } from './bench-support.ts';

/**
 * What fault-rule matching costs a request, without HTTP (issue 15 "Performance": with no rules
 * ≤ 3 % of `make bench` throughput, with 100 rules that do not match ≤ 10 %). Each case runs
 * BENCH_FAULTS_ITERATIONS matches (default 1,000,000) after a warm-up, and prints ns per match and
 * that time as a share of one request at BENCH_FAULTS_REFERENCE_RPS (default 10,700 req/s: the
 * service's median in README.md's last `make bench`, one core), which is what it would take from
 * throughput. Run: `scripts/with-node.sh node scripts/bench-faults-matcher.ts` (`make bench-faults` runs it after the HTTP benchmark).
 *
 * The matcher cases call RuleMatcher.matchRequest (synchronous); the service cases await
 * FaultRuleService.planRequest as a request hook would (the cached matcher plus one await).
 * "100 rules" cases, from cheapest to dearest for the matcher:
 *  - other dialects: every rule names another dialect, so the request's bucket is empty;
 *  - same bucket, literal routes: same dialect and method, 100 other paths (a comparison each);
 *  - same bucket, patterns and globs: 100 regular expressions that fail;
 *  - same bucket and route, conditions fail: route matches, then a header or body field does not.
 */

const ITERATIONS = positiveInt('BENCH_FAULTS_ITERATIONS', 1_000_000);
const REFERENCE_RPS = positiveInt('BENCH_FAULTS_REFERENCE_RPS', 10_700);
const WARMUP = Math.min(ITERATIONS, 200_000);
const NOW = Date.now();
const NS_PER_REQUEST = 1e9 / REFERENCE_RPS;

const INPUT: MatchInput = {
  dialect: 'native',
  method: 'POST',
  routePattern: '/v1/sim/intent',
  path: '/v1/sim/intent',
  headers: { host: 'localhost:3000', 'content-type': 'application/json', 'content-length': '96', 'idempotency-key': 'k-1', 'user-agent': 'autocannon' },
  body: { reservation_id: 'res_1', amount: 50_000, currency: 'KRW', scenario: 'approve', card: { number: '4242424242424242', cvv: '123' } },
  takesOutcome: true,
};

let sequence = 0;

function rule(json: Record<string, unknown>): FaultRule {
  const parsed = parseRule({ action: { type: 'error', status: 503 }, ...json }, { now: NOW });
  if (!parsed.ok) throw new Error(`bench rule: ${JSON.stringify(parsed.issues)}`);
  return { ...parsed.value.input, id: `rule_${++sequence}`, createdAt: NOW } as FaultRule;
}

const OTHER_DIALECTS = ['bookings', 'payment-service', 'payment-server-v2', 'fluxpay'];

const CASES: { label: string; rules: FaultRule[] }[] = [
  { label: '0 rules', rules: [] },
  { label: '100 rules, other dialects', rules: Array.from({ length: 100 }, (_, i) => rule({ match: { dialect: OTHER_DIALECTS[i % 4], route: `/api/v1/r${i}` } })) },
  { label: '100 rules, same bucket, literal routes', rules: Array.from({ length: 100 }, (_, i) => rule({ match: { dialect: 'native', method: 'POST', route: `/v1/sim/other${i}` } })) },
  { label: '100 rules, same bucket, patterns and globs', rules: Array.from({ length: 100 }, (_, i) => rule({ match: { method: 'POST', route: i % 2 === 0 ? `/v1/sim/x${i}/:id` : `/v1/r${i}/**` } })) },
  {
    label: '100 rules, same route, conditions fail',
    rules: Array.from({ length: 100 }, (_, i) =>
      rule({ match: { dialect: 'native', route: '/v1/sim/intent', ...(i % 2 === 0 ? { body: { amount: { gte: 1_000_000 + i } } } : { headers: { 'x-tenant': `t${i}` } }) } }),
    ),
  },
];

function timeSync(matcher: RuleMatcher, iterations: number): { ns: number; sink: number } {
  let sink = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += matcher.matchRequest(INPUT, NOW).length;
  return { ns: Number(process.hrtime.bigint() - started) / iterations, sink };
}

async function timeService(service: FaultRuleService, iterations: number): Promise<{ ns: number; sink: number }> {
  let sink = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += (await service.planRequest('default', INPUT)).ruleIds.length;
  return { ns: Number(process.hrtime.bigint() - started) / iterations, sink };
}

const share = (ns: number) => `${((ns / NS_PER_REQUEST) * 100).toFixed(3)} %`;

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const { label, rules } of CASES) {
    const matcher = RuleMatcher.compile(rules);
    timeSync(matcher, WARMUP);
    const sync = timeSync(matcher, ITERATIONS);
    if (sync.sink !== 0) throw new Error(`${label}: a rule matched; the bench measures rules that do not`);

    const store = new MemoryFaultRuleStore();
    for (const r of rules) await store.create('default', r);
    const service = new FaultRuleService({ store, clock: systemClock, ruleId: () => `rule_${++sequence}`, random: () => createRandom(1) });
    await timeService(service, WARMUP);
    const viaService = await timeService(service, ITERATIONS);
    if (viaService.sink !== 0) throw new Error(`${label}: a rule applied`);

    rows.push([label, sync.ns.toFixed(1), share(sync.ns), viaService.ns.toFixed(1), share(viaService.ns)]);
  }
  process.stdout.write(`fault-rule matching: ${ITERATIONS.toLocaleString('en')} matches per case, node ${process.version}\n`);
  process.stdout.write(`share = ns per match / ns per request at ${REFERENCE_RPS.toLocaleString('en')} req/s (${(NS_PER_REQUEST / 1000).toFixed(1)} µs); issue 15's budget: 0 rules ≤ 3 %, 100 non-matching rules ≤ 10 %\n\n`);
  process.stdout.write(`${table(['case', 'matcher ns', 'share', 'planRequest ns', 'share'], rows, (c) => c > 0)}\n`);
}

await main();
