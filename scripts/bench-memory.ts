import { loadConfig } from '../src/config.ts';
import { systemClock, type Clock, type Timer } from '../src/core/clock.ts';
import { EventBus } from '../src/core/events.ts';
import { createIdFactory } from '../src/core/ids.ts';
import { MemoryIntentStore } from '../src/core/intent-store.ts';
import { IntentService, type CreateIntentInput, type Intent } from '../src/core/intents.ts';
import { createRandom } from '../src/core/random.ts';

/**
 * How much heap an intent costs, measured on the core objects without HTTP, so the heap the
 * service needs at its STORE_MAX_INTENTS bound can be projected. Run by scripts/bench.ts as
 * `node --expose-gc --max-old-space-size=8192 scripts/bench-memory.ts`.
 *
 *  (a) the store alone, holding decided intents: the steady state of a long-running simulator;
 *  (b) through IntentService, every intent still PENDING, with a clock whose timers are free:
 *      the store plus the service's pending-decision map;
 *  (c) as (b) but on the system clock with real timers: what the server really holds while
 *      every intent is PENDING (the worst case, e.g. a load test of long `delay` intents).
 *
 * Inputs go through JSON.parse like a request body does, so strings are as many and as large as
 * in the server (a literal would be one shared string for a million intents).
 * BENCH_MEMORY_INTENTS overrides the count (default 1,000,000) for quick trials.
 */

const COUNT = Number(process.env.BENCH_MEMORY_INTENTS || 1_000_000);
if (!Number.isInteger(COUNT) || COUNT < 1) throw new Error(`BENCH_MEMORY_INTENTS must be a positive integer (got ${process.env.BENCH_MEMORY_INTENTS})`);
const DECIDE_AFTER_MS = 200;
/** Longer than the run, so no real timer fires while it is measured. */
const PENDING_FOR_MS = 600_000;
const defaults = loadConfig({});
const MIB = 2 ** 20;

function exposedGc(): NodeJS.GCFunction {
  const gc = globalThis.gc;
  if (gc === undefined) {
    process.stderr.write('bench-memory: run with node --expose-gc\n');
    process.exit(1);
  }
  return gc;
}
const collect = exposedGc();

interface Measurement {
  label: string;
  before: number;
  after: number;
  seconds: number;
}

/** heapUsed once garbage is gone; twice, as one full GC can leave what finalizers just released. */
function settledHeap(): number {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

/**
 * A clock the fill loops move themselves, 1 ms per INTENTS_PER_MS intents, about the HTTP rate.
 * (Moving it on every reading would make every ULID draw fresh randomness, which under load only
 * happens once per millisecond, and would time ulid's random source instead of the store.)
 * Its timers never fire, so intents stay PENDING.
 */
interface SteppingClock extends Clock {
  at(intent: number): void;
}

const INTENTS_PER_MS = 10;

function steppingClock(): SteppingClock {
  const start = Date.parse('2026-01-01T00:00:00Z');
  let now = start;
  const never: Timer = { cancel() {} };
  return { now: () => now, schedule: () => never, at: (intent) => void (now = start + Math.floor(intent / INTENTS_PER_MS)) };
}

function body(n: number, delayMs?: number): Record<string, unknown> {
  const webhook = n % 2 === 0 ? ',"webhook_url":"http://127.0.0.1:9000/webhooks"' : '';
  const delay = delayMs === undefined ? '' : `,"delay_ms":${delayMs}`;
  return JSON.parse(
    `{"reservation_id":"res_${n}","amount":${1000 + (n % 9000)},"currency":"KRW","scenario":"approve"${delay},` +
      `"metadata":{"order_id":"ord_${n}","user":"u${n % 1000}"}${webhook}}`,
  ) as Record<string, unknown>;
}

/** What the route hands to IntentService.create. */
function input(b: Record<string, unknown>): CreateIntentInput {
  return {
    reservationId: b.reservation_id as string,
    amount: b.amount as number,
    currency: b.currency as string,
    scenario: b.scenario as CreateIntentInput['scenario'],
    delayMs: b.delay_ms as number | undefined,
    webhookUrl: b.webhook_url as string | undefined,
    metadata: b.metadata as Record<string, string>,
  };
}

function newStore(): MemoryIntentStore {
  return new MemoryIntentStore({ ttlMs: defaults.store.intentTtlMs, maxIntents: COUNT });
}

function measure(label: string, fill: () => { size: number }): Measurement {
  const before = settledHeap();
  const started = process.hrtime.bigint();
  const held = fill();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = settledHeap();
  // Reading `held` after the measurement keeps it alive until then.
  if (held.size !== COUNT) throw new Error(`${label}: expected ${COUNT} intents, the store holds ${held.size}`);
  return { label, before, after, seconds };
}

function storeOnly(): MemoryIntentStore {
  const clock = steppingClock();
  const ids = createIdFactory(clock);
  const store = newStore();
  for (let n = 0; n < COUNT; n++) {
    clock.at(n);
    const b = input(body(n));
    const createdAt = clock.now();
    // Field for field what IntentService.create builds, then decided as #finalize leaves it.
    const intent: Intent = {
      id: ids('pay'),
      reservationId: b.reservationId,
      amount: b.amount,
      currency: b.currency,
      scenario: 'approve',
      status: 'PENDING',
      failureCode: null,
      refundedAmount: 0,
      delayMs: DECIDE_AFTER_MS,
      webhookUrl: b.webhookUrl ?? null,
      metadata: b.metadata ?? null,
      createdAt,
      updatedAt: createdAt,
      decidedAt: null,
    };
    store.insert(intent);
    intent.status = 'APPROVED';
    intent.decidedAt = createdAt + DECIDE_AFTER_MS;
    intent.updatedAt = intent.decidedAt;
  }
  return store;
}

/** With the system clock, real time moves on its own and real timers hold the decisions. */
function viaService(clock: Clock | SteppingClock, delayMs?: number): { size: number; service: IntentService } {
  const store = newStore();
  const bus = new EventBus();
  const service = new IntentService({ store, bus, clock, random: createRandom(1), ids: createIdFactory(clock), scenarios: defaults.scenarios });
  const step = 'at' in clock ? (n: number) => clock.at(n) : () => {};
  for (let n = 0; n < COUNT; n++) {
    step(n);
    service.create(input(body(n, delayMs)));
  }
  if (service.pendingCount !== COUNT) throw new Error(`expected ${COUNT} pending decisions, found ${service.pendingCount}`);
  return { get size() { return store.size; }, service };
}

const results: Measurement[] = [];
results.push(measure('(a) store only, decided intents', storeOnly));
results.push(measure('(b) IntentService, all PENDING, no timers', () => viaService(steppingClock())));
results.push(measure('(c) IntentService, all PENDING, real timers', () => viaService(systemClock, PENDING_FOR_MS)));

const perIntent = (m: Measurement) => (m.after - m.before) / COUNT;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const count = (n: number) => n.toLocaleString('en-US');

const header = ['', 'heapUsed before', 'heapUsed after', 'bytes/intent', 'inserts'];
const rows = results.map((m) => [m.label, mib(m.before), mib(m.after), perIntent(m).toFixed(0), `${m.seconds.toFixed(2)} s`]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');

const [decided, , pending] = results as [Measurement, Measurement, Measurement];
const bound = defaults.store.maxIntents;
console.log(`paysim memory: ${count(COUNT)} intents in the core, no HTTP (heapUsed after a full GC; Node ${process.version})`);
console.log('intents: res_<n>, KRW, approve, metadata {order_id, user}, webhook_url on every other one');
console.log('');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log('');
console.log(
  `projected intent heap at STORE_MAX_INTENTS=${count(bound)} (default): ${mib(perIntent(decided) * bound)} with every intent decided, ` +
    `${mib(perIntent(pending) * bound)} with every intent PENDING (real timers); ` +
    'add the server\'s own baseline heap and the idempotency store (IDEMPOTENCY_MAX_KEYS) on top',
);
