import { describe, expect, it } from 'vitest';
import { MemoryFaultRuleStore } from '../../src/adapters/memory/fault-rules.ts';
import { DomainError } from '../../src/core/errors.ts';
import type { MatchInput } from '../../src/core/faults/matcher.ts';
import type { FaultRuleStore } from '../../src/core/faults/ports.ts';
import { FaultRuleService, NO_FAULTS, type RuleHit } from '../../src/core/faults/service.ts';
import { NO_WEBHOOK_FAULTS } from '../../src/core/faults/webhook-policy.ts';
import { createRandom, type RandomSource } from '../../src/core/random.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { concurrently, tally } from '../adapters/contracts/fixtures.ts';
import { errorOf } from './support.ts';
import { T0 } from './faults-support.ts';

const NS = 'default';

const intent = (overrides: Partial<MatchInput> = {}): MatchInput => ({
  takesOutcome: true,
  dialect: 'native',
  method: 'POST',
  routePattern: '/v1/sim/intents',
  path: '/v1/sim/intents',
  headers: {},
  body: { amount: 50_000, currency: 'KRW' },
  ...overrides,
});

/** Counts the store calls a service makes. */
function counting(store: FaultRuleStore): FaultRuleStore & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'calls') return calls;
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls[String(key)] = (calls[String(key)] ?? 0) + 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as FaultRuleStore & { calls: Record<string, number> };
}

interface Setup {
  service: FaultRuleService;
  store: ReturnType<typeof counting>;
  clock: ManualClock;
  hits: RuleHit[];
}

/** A service on a memory store, a manual clock and one seeded stream per namespace. */
function setup(options: { seed?: number; store?: FaultRuleStore; refreshMs?: number; maxRules?: number } = {}): Setup {
  const clock = new ManualClock(T0);
  const store = counting(options.store ?? new MemoryFaultRuleStore({ maxRules: options.maxRules ?? 1_000 }));
  const streams = new Map<string, RandomSource>();
  const random = (namespace: string) => {
    let stream = streams.get(namespace);
    if (stream === undefined) {
      stream = createRandom((options.seed ?? 1) + namespace.length);
      streams.set(namespace, stream);
    }
    return stream;
  };
  let sequence = 0;
  const hits: RuleHit[] = [];
  const service = new FaultRuleService({ store, clock, ruleId: () => `rule_${++sequence}`, random, refreshMs: options.refreshMs, onHit: (hit) => hits.push(hit) });
  return { service, store, clock, hits };
}

describe('FaultRuleService: rules', () => {
  it('creates a rule from its JSON, with an id and its creation time; lists and gets it', async () => {
    const { service } = setup();
    const created = await service.create(NS, { name: 'down', action: { type: 'error', status: 503 } });
    expect(created).toMatchObject({ rule: { id: 'rule_1', name: 'down', createdAt: T0, action: { type: 'error', status: 503 } }, hits: 0, matched: 0 });
    expect(await service.list(NS)).toEqual([created]);
    expect(await service.get(NS, 'rule_1')).toEqual(created);
    expect(await service.get('other', 'rule_1')).toBeUndefined();
  });

  it('refuses an invalid rule with VALIDATION_FAILED naming every problem as a JSON pointer, and stores nothing', async () => {
    const { service } = setup();
    const error = await errorOf(() => service.create(NS, { probability: 3, action: { type: 'error', status: 404 } }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toBe('body /probability: must be a number from 0 to 1');
    expect(error.details).toEqual([
      { in: 'body', field: '/probability', rule: 'maximum', message: 'must be a number from 0 to 1' },
      { in: 'body', field: '/action/status', rule: 'enum', message: 'must be one of 500, 502, 503, 504, 429' },
    ]);
    expect(await service.list(NS)).toEqual([]);
  });

  it('refuses a rule beyond the store bound with a clear client error', async () => {
    const { service } = setup({ maxRules: 1 });
    await service.create(NS, { action: { type: 'duplicate' } });
    const error = await errorOf(() => service.create(NS, { action: { type: 'duplicate' } }));
    expect(error).toBeInstanceOf(DomainError);
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details).toEqual([{ in: 'body', field: '/', rule: 'max_rules', message: 'at most 1 rules may exist at once; delete some first' }]);
  });

  it('a FAULTS_FILE rule keeps the id the file gives; an id taken is refused', async () => {
    const { service } = setup();
    const parsed = { id: 'slow-intents', input: (await service.create(NS, { action: { type: 'timeout', ms: 5 } })).rule };
    const added = await service.add(NS, parsed);
    expect(added.rule.id).toBe('slow-intents');
    const error = await errorOf(() => service.add('other', parsed));
    expect(error.details).toEqual([{ in: 'body', field: '/id', rule: 'unique', message: 'rule slow-intents exists already' }]);
  });

  it('a relative window counts from creation', async () => {
    const { service, clock } = setup();
    await clock.advance(5_000);
    const created = await service.create(NS, { window: { from: 1_000, until: 2_000 }, action: { type: 'duplicate' } });
    expect(created.rule.window).toEqual({ from: T0 + 6_000, until: T0 + 7_000 });
  });
});

describe('FaultRuleService.hasNoRequestRules (the hot path’s check)', () => {
  it('is false until the rules are loaded, true without request rules, false with one', async () => {
    const { service } = setup();
    expect(service.hasNoRequestRules(NS)).toBe(false);
    await service.planRequest(NS, intent());
    expect(service.hasNoRequestRules(NS)).toBe(true);
    await service.create(NS, { action: { type: 'duplicate' } });
    await service.planRequest(NS, intent());
    expect(service.hasNoRequestRules(NS)).toBe(true);
    await service.create(NS, { action: { type: 'error', status: 503 } });
    await service.planRequest(NS, intent());
    expect(service.hasNoRequestRules(NS)).toBe(false);
  });
});

describe('FaultRuleService.planRequest', () => {
  it('with no rules: NO_FAULTS, and after the first look no store call at all', async () => {
    const { service, store } = setup();
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    const before = { ...store.calls };
    for (let i = 0; i < 100; i++) expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    expect(store.calls).toEqual(before);
  });

  it('peekRequest: NO_FAULTS at once when the loaded rules match nothing; undefined when a rule matches or nothing is loaded yet', async () => {
    const { service } = setup();
    expect(service.peekRequest(NS, intent())).toBeUndefined();
    await service.create(NS, { match: { method: 'GET' }, action: { type: 'error', status: 500 } });
    expect(service.peekRequest(NS, intent())).toBeUndefined();
    await service.planRequest(NS, intent());
    expect(service.peekRequest(NS, intent())).toBe(NO_FAULTS);
    expect(service.peekRequest(NS, intent({ method: 'GET' }))).toBeUndefined();
  });

  it('with rules that do not match: NO_FAULTS and no claim', async () => {
    const { service, store } = setup();
    await service.create(NS, { match: { dialect: 'fluxpay' }, action: { type: 'error', status: 500 } });
    await service.create(NS, { match: { body: { amount: { gte: 1_000_000 } } }, action: { type: 'error', status: 500 } });
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    expect(store.calls.claimHit).toBeUndefined();
  });

  it('an error rule: the response slot, its id for X-Sim-Rule, a hit counted and reported', async () => {
    const { service, hits } = setup();
    const { rule } = await service.create(NS, { match: { route: '/v1/sim/intents' }, action: { type: 'error', status: 429 } });
    expect(await service.planRequest(NS, intent())).toEqual({ ruleIds: [rule.id], latency: null, outcome: null, response: { ruleId: rule.id, action: { type: 'error', status: 429, retryAfterSeconds: 1 } } });
    expect(hits).toEqual([{ namespace: NS, ruleId: rule.id, action: 'error' }]);
    expect(await service.get(NS, rule.id)).toMatchObject({ hits: 1, matched: 1, lastHitAt: T0 });
  });

  it('one rule per slot: latency, outcome and response combine; a second rule of a filled slot is matched but not applied', async () => {
    const { service } = setup();
    const latency = await service.create(NS, { action: { type: 'latency', distribution: 'fixed', params: { ms: 250 } } });
    const lost = await service.create(NS, { action: { type: 'response_lost' } });
    const timeout = await service.create(NS, { action: { type: 'timeout', ms: 1_000 } });
    const outcome = await service.create(NS, { action: { type: 'outcome', failure_code: 'insufficient_funds' } });
    const plan = await service.planRequest(NS, intent());
    expect(plan).toEqual({
      ruleIds: [latency.rule.id, lost.rule.id, outcome.rule.id],
      latency: { ruleId: latency.rule.id, ms: 250 },
      outcome: { ruleId: outcome.rule.id, failureCode: 'insufficient_funds', matchedOrder: expect.any(Number) },
      response: { ruleId: lost.rule.id, action: { type: 'response_lost' } },
    });
    expect(await service.get(NS, timeout.rule.id)).toMatchObject({ hits: 0, matched: 1 });
  });

  it('count: the first N matches; then the next rule of the slot takes over', async () => {
    const { service } = setup();
    const first = await service.create(NS, { count: 2, action: { type: 'error', status: 503 } });
    const then = await service.create(NS, { action: { type: 'error', status: 500 } });
    const applied = [];
    for (let i = 0; i < 4; i++) applied.push((await service.planRequest(NS, intent())).response?.ruleId);
    expect(applied).toEqual([first.rule.id, first.rule.id, then.rule.id, then.rule.id]);
    expect((await service.list(NS)).map((s) => [s.hits, s.matched])).toEqual([
      [2, 4],
      [2, 4],
    ]);
  });

  it('200 concurrent requests against a rule of count 5: exactly 5 are shaped', async () => {
    const { service } = setup();
    await service.create(NS, { count: 5, action: { type: 'error', status: 502 } });
    const plans = await concurrently(200, () => service.planRequest(NS, intent()));
    expect(tally(plans.map((p) => ({ kind: p.response === null ? 'clean' : 'shaped' })))).toEqual({ shaped: 5, clean: 195 });
  });

  it('probability: about that share of matches apply (seeded), all are counted as matched', async () => {
    const { service } = setup({ seed: 7 });
    const { rule } = await service.create(NS, { probability: 0.3, action: { type: 'error', status: 500 } });
    let shaped = 0;
    for (let i = 0; i < 2_000; i++) if ((await service.planRequest(NS, intent())).response !== null) shaped++;
    expect(shaped / 2_000).toBeGreaterThan(0.27);
    expect(shaped / 2_000).toBeLessThan(0.33);
    expect(await service.get(NS, rule.id)).toMatchObject({ hits: shaped, matched: 2_000 });
  });

  it('probability 0 never applies, and draws nothing', async () => {
    const draws = { n: 0 };
    const clock = new ManualClock(T0);
    const service = new FaultRuleService({ store: new MemoryFaultRuleStore(), clock, ruleId: () => 'rule_x', random: () => ({ next: () => (draws.n++, 0) }) });
    await service.create(NS, { probability: 0, action: { type: 'error', status: 500 } });
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    expect(draws.n).toBe(0);
  });

  it('determinism: two seeded runs of the same requests make the same selections and latencies', async () => {
    const run = async (seed: number) => {
      const { service } = setup({ seed });
      await service.create(NS, { probability: 0.5, action: { type: 'latency', distribution: 'lognormal', params: { p50: 100, p99: 900 } } });
      await service.create(NS, { probability: 0.2, count: 30, action: { type: 'error', status: 503 } });
      await service.create(NS, { probability: 0.1, match: { body: { amount: { gte: 10_000 } } }, action: { type: 'outcome', approve: true } });
      const plans = [];
      for (let i = 0; i < 300; i++) plans.push(await service.planRequest(NS, intent({ body: { amount: i * 100 } })));
      // The selections and draws: an outcome's place in the process's order of matches and deletions is no draw.
      return plans.map((p) => (p.outcome === null ? p : { ...p, outcome: { ...p.outcome, matchedOrder: 0 } }));
    };
    const first = await run(42);
    expect(await run(42)).toEqual(first);
    expect(await run(43)).not.toEqual(first);
    // The runs did select: some plans have each slot, some none.
    expect(first.filter((p) => p.latency !== null).length).toBeGreaterThan(100);
    expect(first.filter((p) => p.response !== null).length).toBe(30);
    expect(first.filter((p) => p.outcome !== null).length).toBeGreaterThan(5);
    expect(first.filter((p) => p === NO_FAULTS).length).toBeGreaterThan(50);
  });

  it('namespaces: a rule shapes only requests of its namespace; each namespace draws from its own stream', async () => {
    const { service } = setup();
    await service.create('ci-1', { action: { type: 'error', status: 500 } });
    expect((await service.planRequest('ci-1', intent())).response).not.toBeNull();
    expect(await service.planRequest('ci-2', intent())).toBe(NO_FAULTS);
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
  });

  it('changes apply at once: created, switched off, on, deleted, all deleted', async () => {
    const { service } = setup();
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    const { rule } = await service.create(NS, { action: { type: 'error', status: 500 } });
    expect((await service.planRequest(NS, intent())).ruleIds).toEqual([rule.id]);
    await service.setEnabled(NS, rule.id, false);
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    await service.setEnabled(NS, rule.id, true);
    expect((await service.planRequest(NS, intent())).ruleIds).toEqual([rule.id]);
    expect(await service.delete(NS, rule.id)).toBe(true);
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
    await service.create(NS, { action: { type: 'error', status: 500 } });
    await service.create(NS, { action: { type: 'error', status: 500 } });
    expect(await service.deleteAll(NS)).toBe(2);
    expect(await service.planRequest(NS, intent())).toBe(NO_FAULTS);
  });

  it('a rule created while the rule set is being loaded is not missed (the load read the rules before it)', async () => {
    const memory = new MemoryFaultRuleStore();
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    // list reads the rules at once, then answers only when the gate opens: a slow store.
    const slow: FaultRuleStore = {
      create: (ns, rule) => memory.create(ns, rule),
      get: (ns, id) => memory.get(ns, id),
      setEnabled: (ns, id, enabled) => memory.setEnabled(ns, id, enabled),
      delete: (ns, id) => memory.delete(ns, id),
      deleteAll: (ns) => memory.deleteAll(ns),
      declare: (ns, fingerprint, rules) => memory.declare(ns, fingerprint, rules),
      claimHit: (ns, id, sampled, now) => memory.claimHit(ns, id, sampled, now),
      releaseHit: (ns, id) => memory.releaseHit(ns, id),
      counters: (ns) => memory.counters(ns),
      revision: (ns) => memory.revision(ns),
      stats: () => memory.stats(),
      list: async (ns) => {
        const rules = await memory.list(ns);
        await gate;
        return rules;
      },
    };
    const { service, store } = setup({ store: slow });
    const planning = service.planRequest(NS, intent());
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.calls.list).toBe(1);
    await service.create(NS, { action: { type: 'error', status: 500 } });
    release();
    expect(await planning).toBe(NO_FAULTS);
    expect((await service.planRequest(NS, intent())).response).not.toBeNull();
  });

  it('a window: the rule applies inside it only, on the injected clock', async () => {
    const { service, clock } = setup();
    await service.create(NS, { window: { from: 1_000, until: 3_000 }, action: { type: 'error', status: 500 } });
    const at = async (ms: number) => {
      await clock.advance(ms - (clock.now() - T0));
      return (await service.planRequest(NS, intent())).response !== null;
    };
    expect([await at(0), await at(1_000), await at(2_999), await at(3_000)]).toEqual([false, true, true, false]);
  });

  it('replicas sharing a store: another replica\'s change applies from the first request once refreshMs has passed, however long the replica was idle', async () => {
    const shared = new MemoryFaultRuleStore();
    const a = setup({ store: shared });
    const b = setup({ store: shared, refreshMs: 1_000 });
    expect(await b.service.planRequest(NS, intent())).toBe(NO_FAULTS);
    await a.service.create(NS, { action: { type: 'error', status: 500 } });
    expect(await b.service.planRequest(NS, intent())).toBe(NO_FAULTS);
    await b.clock.advance(1_000);
    const revisions = b.store.calls.revision;
    expect(await b.service.planRequest(NS, intent())).not.toBe(NO_FAULTS);
    expect(b.store.calls.revision).toBe((revisions ?? 0) + 1);
    // Idle for a minute, then a rule made elsewhere: the first request has it.
    await b.clock.advance(60_000);
    await a.service.create(NS, { action: { type: 'latency', distribution: 'fixed', params: { ms: 5 } } });
    expect((await b.service.planRequest(NS, intent())).latency).not.toBeNull();
    // Unchanged since: the revision is checked, the rules are not read again.
    const lists = b.store.calls.list;
    await b.clock.advance(1_000);
    await b.service.planRequest(NS, intent());
    await b.service.planRequest(NS, intent());
    expect(b.store.calls.list).toBe(lists);
  });

  it('replicas sharing a store that is away: requests go on with the rules compiled last (none fails), and the store is asked once a refreshMs, not once a request', async () => {
    const inner = new MemoryFaultRuleStore();
    let away = false;
    const store = counting(
      new Proxy(inner, {
        get(target, key, receiver) {
          const value = Reflect.get(target, key, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => (away && key !== 'claimHit' ? Promise.reject(new Error('connect ECONNREFUSED')) : (value as (...a: unknown[]) => unknown).apply(target, args));
        },
      }),
    );
    const b = setup({ store, refreshMs: 1_000 });
    await b.service.create(NS, { action: { type: 'error', status: 500 } });
    expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    away = true;
    await b.clock.advance(1_000);
    const revisions = store.calls.revision ?? 0;
    for (let i = 0; i < 20; i++) expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    expect(store.calls.revision).toBe(revisions + 1);
    await b.clock.advance(1_000);
    for (let i = 0; i < 20; i++) expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    expect(store.calls.revision).toBe(revisions + 2);
  });
});

describe('FaultRuleService.changedElsewhere (a notice of another replica’s change)', () => {
  it('the next request reads the revision at once, the clock not moved, and applies the change; without a namespace, every namespace’s', async () => {
    const shared = new MemoryFaultRuleStore();
    const a = setup({ store: shared });
    const b = setup({ store: shared, refreshMs: 1_000 });
    for (const ns of [NS, 'other']) expect(await b.service.planRequest(ns, intent())).toBe(NO_FAULTS);
    for (const ns of [NS, 'other']) await a.service.create(ns, { action: { type: 'error', status: 500 } });
    // Without a notice B goes on with what it compiled until its refresh.
    expect(await b.service.planRequest(NS, intent())).toBe(NO_FAULTS);
    b.service.changedElsewhere(NS);
    expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    expect(await b.service.planRequest('other', intent())).toBe(NO_FAULTS);
    b.service.changedElsewhere();
    expect((await b.service.planRequest('other', intent())).response).not.toBeNull();
    expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    // Read once per notice: the requests after it use what was read.
    const revisions = b.store.calls.revision;
    for (const ns of [NS, 'other', NS]) await b.service.planRequest(ns, intent());
    expect(b.store.calls.revision).toBe(revisions);
  });

  for (const earlier of [0, 1, 2]) {
    it(`told during a load that read the revision before another replica's change (after ${earlier} earlier notices): the next request reads it again and applies the change (rev76c: from the second notice on, the load's read was kept as fresh)`, async () => {
      const memory = new MemoryFaultRuleStore();
      let hold: Promise<void> | undefined;
      // The revision read before the change, answered after it.
      const store: FaultRuleStore = new Proxy(memory, {
        get(target, key, receiver) {
          const value = Reflect.get(target, key, receiver) as unknown;
          if (typeof value !== 'function') return value;
          if (key !== 'revision') return (value as (...a: unknown[]) => unknown).bind(target);
          return async (ns: string) => {
            const read = await memory.revision(ns);
            if (hold !== undefined) await hold;
            return read;
          };
        },
      });
      const a = setup({ store: memory });
      const b = setup({ store, refreshMs: 1_000 });
      expect(await b.service.planRequest(NS, intent())).toBe(NO_FAULTS);
      for (let i = 0; i < earlier; i++) {
        b.service.changedElsewhere(NS);
        expect(await b.service.planRequest(NS, intent())).toBe(NO_FAULTS);
      }
      await b.clock.advance(1_000);
      let release = (): void => undefined;
      hold = new Promise<void>((resolve) => (release = resolve));
      const inFlight = b.service.planRequest(NS, intent());
      await new Promise((resolve) => setImmediate(resolve));
      await a.service.create(NS, { action: { type: 'error', status: 500 } });
      b.service.changedElsewhere(NS);
      hold = undefined;
      release();
      expect(await inFlight).toBe(NO_FAULTS);
      expect((await b.service.planRequest(NS, intent())).response).not.toBeNull();
    });
  }

  it('told during the load that follows a change of its own (its own notice comes back to it): what the load read is kept, due for a refresh, so a store gone silent then still leaves requests the rules compiled last after a moment (a first version of the notices kept none, and requests waited for the silent read: the Redis-silent replica test caught it)', async () => {
    const memory = new MemoryFaultRuleStore();
    let releaseRevision = (): void => undefined;
    let holdRevision = false;
    let silent = false;
    const store: FaultRuleStore = new Proxy(memory, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown;
        if (typeof value !== 'function') return value;
        if (key === 'revision') {
          return async (ns: string) => {
            if (silent) return new Promise<number>(() => undefined);
            if (holdRevision) await new Promise<void>((resolve) => (releaseRevision = resolve));
            return memory.revision(ns);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const { service, clock } = setup({ store, refreshMs: 1_000 });
    await service.create(NS, { action: { type: 'error', status: 500 } });
    holdRevision = true;
    const planning = service.planRequest(NS, intent());
    await new Promise((resolve) => setImmediate(resolve));
    service.changedElsewhere(NS);
    holdRevision = false;
    releaseRevision();
    expect((await planning).response).not.toBeNull();
    // Redis silent from now on: the revision is due (the notice came during the load), its read never answers.
    silent = true;
    await clock.advance(1);
    const started = Date.now();
    expect((await service.planRequest(NS, intent())).response).not.toBeNull();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('FaultRuleService.planWebhook', () => {
  it('with no webhook rules: NO_WEBHOOK_FAULTS', async () => {
    const { service } = setup();
    await service.create(NS, { action: { type: 'error', status: 500 } });
    expect(await service.planWebhook(NS, 'https://hooks.example/a')).toBe(NO_WEBHOOK_FAULTS);
  });

  it('one rule per kind of fault, by URL prefix or for every target', async () => {
    const { service, hits } = setup();
    const dup = await service.create(NS, { match: { url_prefix: 'https://hooks.example/' }, action: { type: 'duplicate' } });
    const dup2 = await service.create(NS, { action: { type: 'duplicate' } });
    const drop = await service.create(NS, { action: { type: 'drop_attempts', n: 2 } });
    const delay = await service.create(NS, { match: { url_prefix: 'https://hooks.example/slow' }, action: { type: 'delay', distribution: 'fixed', params: { ms: 1_500 } } });
    const reorder = await service.create(NS, { match: { url_prefix: 'https://other.example/' }, action: { type: 'reorder', window_ms: 500 } });
    expect(await service.planWebhook(NS, 'https://hooks.example/slow/1')).toEqual({
      ruleIds: [dup.rule.id, drop.rule.id, delay.rule.id],
      duplicate: { ruleId: dup.rule.id },
      reorder: null,
      delay: { ruleId: delay.rule.id, ms: 1_500 },
      dropAttempts: { ruleId: drop.rule.id, n: 2 },
    });
    expect(await service.planWebhook(NS, 'https://other.example/x')).toEqual({
      ruleIds: [dup2.rule.id, drop.rule.id, reorder.rule.id],
      duplicate: { ruleId: dup2.rule.id },
      reorder: { ruleId: reorder.rule.id, windowMs: 500 },
      delay: null,
      dropAttempts: { ruleId: drop.rule.id, n: 2 },
    });
    expect(hits.map((h) => h.action)).toEqual(['duplicate', 'drop_attempts', 'delay', 'duplicate', 'drop_attempts', 'reorder']);
  });

  it('count applies to deliveries as to requests', async () => {
    const { service } = setup();
    await service.create(NS, { count: 1, action: { type: 'duplicate' } });
    expect((await service.planWebhook(NS, 'https://a/')).duplicate).not.toBeNull();
    expect(await service.planWebhook(NS, 'https://a/')).toBe(NO_WEBHOOK_FAULTS);
  });
});
