import { describe, expect, it } from 'vitest';
import type { FaultRule } from '../../../src/core/faults/model.ts';
import type { FaultRuleStore } from '../../../src/core/faults/ports.ts';
import { parseRule } from '../../../src/core/faults/validation.ts';
import { concurrently, T0, tally } from './fixtures.ts';

export type FaultRuleStoreFactory = (options: { maxRules: number }) => Promise<FaultRuleStore> | FaultRuleStore;

const ROOMY = { maxRules: 1_000 };

let sequence = 0;

/** A rule from its JSON (as POST /v1/sim/rules takes it), with a fresh id. */
function aRule(json: Record<string, unknown> = {}, id = `rule_${(++sequence).toString().padStart(8, '0')}`): FaultRule {
  const parsed = parseRule({ action: { type: 'error', status: 503 }, ...json }, { now: T0 });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return { ...parsed.value.input, id, createdAt: T0 } as FaultRule;
}

/** The FaultRuleStore port's contract (src/core/faults/ports.ts), for any adapter `make` builds fresh. */
export function faultRuleStoreContract(name: string, make: FaultRuleStoreFactory): void {
  describe(`FaultRuleStore contract: ${name}`, () => {
    describe('rules', () => {
      it('create, get and list: a rule comes back as it went in, with zero counters; list keeps creation order', async () => {
        const store = await make(ROOMY);
        const rules = [aRule({ name: 'first', count: 3 }), aRule({ match: { url_prefix: 'https://hooks.example/' }, action: { type: 'duplicate' } }), aRule({ match: { body: { amount: { gte: 10 } }, headers: { 'x-a': { prefix: 'b' } } }, window: { from: 5, until: 10 } })];
        for (const rule of rules) expect(await store.create('default', rule)).toEqual({ ok: true });
        expect(await store.get('default', rules[0]!.id)).toEqual({ rule: rules[0], hits: 0, matched: 0, lastHitAt: null });
        expect(await store.list('default')).toEqual(rules.map((rule) => ({ rule, hits: 0, matched: 0, lastHitAt: null })));
        expect(await store.get('default', 'rule_unknown')).toBeUndefined();
      });

      it('returns copies and keeps copies: changing either side changes nothing stored', async () => {
        const store = await make(ROOMY);
        const rule = aRule({ match: { headers: { 'x-a': 'b' } } });
        await store.create('default', rule);
        rule.enabled = false;
        (rule.match as { route: string | null }).route = '/changed';
        const read = await store.get('default', rule.id);
        if (read === undefined || read.rule.target !== 'request') throw new Error('no rule');
        expect(read.rule).toMatchObject({ enabled: true, match: { route: null } });
        read.hits = 99;
        (read.rule.match.headers as Record<string, unknown>)['x-a'] = { kind: 'equals', value: 'z' };
        const listed = await store.list('default');
        listed[0]!.rule.probability = 0;
        expect(await store.get('default', rule.id)).toMatchObject({ hits: 0, rule: { probability: 1, match: { headers: { 'x-a': { kind: 'equals', value: 'b' } } } } });
      });

      it('namespaces: a rule is found, listed, switched, claimed and deleted only in its own', async () => {
        const store = await make(ROOMY);
        const a = aRule();
        const b = aRule();
        await store.create('ci-job-1', a);
        await store.create('ci-job-2', b);
        expect((await store.list('ci-job-1')).map((s) => s.rule.id)).toEqual([a.id]);
        expect(await store.list('default')).toEqual([]);
        expect(await store.get('ci-job-2', a.id)).toBeUndefined();
        expect(await store.setEnabled('ci-job-2', a.id, false)).toBeUndefined();
        expect(await store.claimHit('ci-job-2', a.id, true, T0)).toEqual({ kind: 'gone' });
        expect(await store.delete('ci-job-2', a.id)).toBe(false);
        expect(await store.deleteAll('ci-job-1')).toBe(1);
        expect((await store.list('ci-job-2')).map((s) => s.rule.id)).toEqual([b.id]);
      });

      it('ids are unique across namespaces: a second create with an id is refused', async () => {
        const store = await make(ROOMY);
        const rule = aRule();
        await store.create('a', rule);
        expect(await store.create('b', { ...rule })).toEqual({ ok: false, reason: 'exists' });
        expect(await store.create('a', { ...rule })).toEqual({ ok: false, reason: 'exists' });
        expect(await store.stats()).toEqual({ size: 1, max: 1_000 });
      });

      it('setEnabled switches a rule and keeps its counters', async () => {
        const store = await make(ROOMY);
        const rule = aRule();
        await store.create('default', rule);
        await store.claimHit('default', rule.id, true, T0 + 1);
        expect(await store.setEnabled('default', rule.id, false)).toEqual({ rule: { ...rule, enabled: false }, hits: 1, matched: 1, lastHitAt: T0 + 1 });
        expect(await store.setEnabled('default', rule.id, true)).toMatchObject({ rule: { enabled: true }, hits: 1 });
        expect(await store.setEnabled('default', 'rule_unknown', true)).toBeUndefined();
      });

      it('delete one, delete all of a namespace', async () => {
        const store = await make(ROOMY);
        const [a, b, c] = [aRule(), aRule(), aRule()];
        for (const rule of [a, b, c]) await store.create('default', rule);
        expect(await store.delete('default', b.id)).toBe(true);
        expect(await store.delete('default', b.id)).toBe(false);
        expect((await store.list('default')).map((s) => s.rule.id)).toEqual([a.id, c.id]);
        expect(await store.deleteAll('default')).toBe(2);
        expect(await store.deleteAll('default')).toBe(0);
        expect(await store.list('default')).toEqual([]);
        expect(await store.stats()).toEqual({ size: 0, max: 1_000 });
        // An id freed by a delete may be used again.
        expect(await store.create('default', a)).toEqual({ ok: true });
      });

      it('revision changes with every change of the rule set, and only then; an empty namespace is revision 0', async () => {
        const store = await make(ROOMY);
        expect(await store.revision('default')).toBe(0);
        const rule = aRule();
        const seen = new Set<number>([0]);
        const expectNew = async () => {
          const revision = await store.revision('default');
          expect(seen.has(revision), `revision ${revision} came back`).toBe(false);
          seen.add(revision);
          return revision;
        };
        await store.create('default', rule);
        const created = await expectNew();
        await store.claimHit('default', rule.id, true, T0);
        await store.get('default', rule.id);
        expect(await store.revision('default')).toBe(created);
        await store.setEnabled('default', rule.id, false);
        await expectNew();
        await store.create('default', aRule());
        await expectNew();
        // Another namespace's change is not this one's.
        const before = await store.revision('default');
        await store.create('other', aRule());
        expect(await store.revision('default')).toBe(before);
        await store.delete('default', rule.id);
        await expectNew();
        await store.deleteAll('default');
        expect(await store.revision('default')).toBe(0);
      });
    });

    /*
     * FAULTS_FILE's rules on a store several replicas share: before 2026-12-03 each start added
     * them (a second replica's start ended on "rule … exists already" for a rule with an id, and
     * a rule without one was added once per replica start).
     */
    describe('declare (FAULTS_FILE)', () => {
      /** The namespace's rules as [id, enabled, hits]. */
      async function rulesOf(store: FaultRuleStore, namespace = 'default'): Promise<Array<[string, boolean, number]>> {
        return (await store.list(namespace)).map((s) => [s.rule.id, s.rule.enabled, s.hits]);
      }

      it('makes the rules after the others once per fingerprint: the same fingerprint again keeps them as the API left them', async () => {
        const store = await make(ROOMY);
        const api = aRule({}, 'api-made');
        await store.create('default', api);
        const file = [aRule({ name: 'slow' }, 'slow-intents'), aRule({ count: 2 }, 'rule_generated_1')];
        const before = await store.revision('default');
        expect(await store.declare('default', 'fp-1', file)).toEqual({ kind: 'applied', replaced: 0 });
        expect(await store.revision('default')).toBeGreaterThan(before);
        expect(await store.list('default')).toEqual([api, ...file].map((rule) => ({ rule, hits: 0, matched: 0, lastHitAt: null })));
        // The API at work on them: one hit, one disabled, one deleted.
        await store.claimHit('default', 'slow-intents', true, T0 + 1);
        await store.setEnabled('default', 'slow-intents', false);
        await store.delete('default', 'rule_generated_1');
        const revision = await store.revision('default');
        // Another replica's start, or a restart, with the same file (its own ids for rules without one).
        expect(await store.declare('default', 'fp-1', [aRule({ name: 'slow' }, 'slow-intents'), aRule({ count: 2 }, 'rule_generated_2')])).toEqual({ kind: 'kept' });
        expect(await rulesOf(store)).toEqual([
          ['api-made', true, 0],
          ['slow-intents', false, 1],
        ]);
        expect(await store.revision('default')).toBe(revision);
        // Emptied through the API: the declaration stays, the rules do not come back.
        await store.deleteAll('default');
        expect(await store.declare('default', 'fp-1', file)).toEqual({ kind: 'kept' });
        expect(await store.list('default')).toEqual([]);
      });

      it('another fingerprint replaces the rules the last one made that are still there, and the namespace’s rules with an id it gives; others stay', async () => {
        const store = await make(ROOMY);
        await store.declare('default', 'fp-1', [aRule({}, 'kept-id'), aRule({}, 'rule_old_1'), aRule({}, 'rule_old_2')]);
        await store.delete('default', 'rule_old_2');
        await store.claimHit('default', 'kept-id', true, T0 + 1);
        await store.create('default', aRule({}, 'api-made'));
        await store.create('default', aRule({}, 'api-named-in-file'));
        const changed = [aRule({ probability: 0.5 }, 'kept-id'), aRule({}, 'api-named-in-file'), aRule({}, 'rule_new_1')];
        // kept-id, rule_old_1 (the last declaration's), api-named-in-file (an id of the new one): three went.
        expect(await store.declare('default', 'fp-2', changed)).toEqual({ kind: 'applied', replaced: 3 });
        expect(await store.list('default')).toEqual([aRule({}, 'api-made'), ...changed].map((rule) => ({ rule: { ...rule, createdAt: T0 }, hits: 0, matched: 0, lastHitAt: null })));
        expect(await store.stats()).toEqual({ size: 4, max: 1_000 });
        expect(await store.declare('default', 'fp-2', changed)).toEqual({ kind: 'kept' });
      });

      it('each namespace has its own declaration', async () => {
        const store = await make(ROOMY);
        expect(await store.declare('ci-1', 'fp-1', [aRule({}, 'ci-1-slow')])).toEqual({ kind: 'applied', replaced: 0 });
        expect(await store.declare('ci-2', 'fp-1', [aRule({}, 'ci-2-slow')])).toEqual({ kind: 'applied', replaced: 0 });
        expect(await store.declare('ci-1', 'fp-1', [aRule({}, 'ci-1-slow')])).toEqual({ kind: 'kept' });
        expect((await rulesOf(store, 'ci-2')).map(([id]) => id)).toEqual(['ci-2-slow']);
      });

      it('full or an id another namespace holds: refused, nothing changed', async () => {
        const store = await make({ maxRules: 3 });
        await store.declare('default', 'fp-1', [aRule({}, 'a'), aRule({}, 'b')]);
        await store.create('other', aRule({}, 'theirs'));
        // Replacing a and b with four would hold 5 of 3.
        expect(await store.declare('default', 'fp-2', [aRule({}, 'a'), aRule({}, 'c'), aRule({}, 'd'), aRule({}, 'e')])).toEqual({ kind: 'full', max: 3 });
        expect(await store.declare('default', 'fp-2', [aRule({}, 'theirs')])).toEqual({ kind: 'exists', id: 'theirs' });
        expect((await rulesOf(store)).map(([id]) => id)).toEqual(['a', 'b']);
        // Replacing two with two fits: 1 + 2 of 3.
        expect(await store.declare('default', 'fp-2', [aRule({}, 'a'), aRule({}, 'c')])).toEqual({ kind: 'applied', replaced: 2 });
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
        expect(await store.declare('default', 'fp-1', [aRule({}, 'a'), aRule({}, 'b')])).toEqual({ kind: 'applied', replaced: 2 });
        expect((await rulesOf(store)).map(([id]) => id)).toEqual(['a', 'b']);
      });

      it('two starts at once with one file make its rules once', async () => {
        const store = await make(ROOMY);
        const outcomes = await concurrently(10, (i) => store.declare('default', 'fp-1', [aRule({}, 'slow'), aRule({}, `rule_gen_${i}`)]));
        expect(tally(outcomes)).toEqual({ applied: 1, kept: 9 });
        expect(await store.stats()).toEqual({ size: 2, max: 1_000 });
      });
    });

    describe('claimHit', () => {
      it('counts every match; applies those that passed the probability; `count` caps what applies', async () => {
        const store = await make(ROOMY);
        const rule = aRule({ count: 2 });
        await store.create('default', rule);
        const outcomes = [];
        for (const [i, sampled] of [true, false, true, true].entries()) outcomes.push(await store.claimHit('default', rule.id, sampled, T0 + i));
        expect(outcomes).toEqual([
          { kind: 'applied', hits: 1 },
          { kind: 'skipped', reason: 'probability' },
          { kind: 'applied', hits: 2 },
          { kind: 'skipped', reason: 'exhausted' },
        ]);
        expect(await store.get('default', rule.id)).toMatchObject({ hits: 2, matched: 4, lastHitAt: T0 + 2 });
        expect(await store.counters('default')).toEqual([{ id: rule.id, hits: 2, matched: 4 }]);
      });

      it('without a count every sampled match applies', async () => {
        const store = await make(ROOMY);
        const rule = aRule();
        await store.create('default', rule);
        for (let i = 0; i < 10; i++) await store.claimHit('default', rule.id, true, T0);
        expect(await store.counters('default')).toEqual([{ id: rule.id, hits: 10, matched: 10 }]);
      });

      it('a deleted or disabled rule is gone and counts nothing', async () => {
        const store = await make(ROOMY);
        const [off, deleted] = [aRule(), aRule()];
        await store.create('default', off);
        await store.create('default', deleted);
        await store.setEnabled('default', off.id, false);
        await store.delete('default', deleted.id);
        expect(await store.claimHit('default', off.id, true, T0)).toEqual({ kind: 'gone' });
        expect(await store.claimHit('default', deleted.id, true, T0)).toEqual({ kind: 'gone' });
        expect(await store.counters('default')).toEqual([{ id: off.id, hits: 0, matched: 0 }]);
      });

      it('200 concurrent claims on a rule of count 5: exactly 5 apply, and all 200 are counted', async () => {
        const store = await make(ROOMY);
        const rule = aRule({ count: 5 });
        await store.create('default', rule);
        const outcomes = await concurrently(200, () => store.claimHit('default', rule.id, true, T0));
        expect(tally(outcomes)).toEqual({ applied: 5, skipped: 195 });
        expect(outcomes.flatMap((o) => (o.kind === 'applied' ? [o.hits] : [])).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
        expect(await store.counters('default')).toEqual([{ id: rule.id, hits: 5, matched: 200 }]);
      });

      it('concurrent claims on two rules count each apart', async () => {
        const store = await make(ROOMY);
        const [a, b] = [aRule({ count: 3 }), aRule()];
        await store.create('default', a);
        await store.create('default', b);
        const outcomes = await concurrently(100, (i) => store.claimHit('default', i % 2 === 0 ? a.id : b.id, true, T0));
        expect(tally(outcomes)).toEqual({ applied: 53, skipped: 47 });
        expect(await store.counters('default')).toEqual([
          { id: a.id, hits: 3, matched: 50 },
          { id: b.id, hits: 50, matched: 50 },
        ]);
      });
    });

    describe('releaseHit', () => {
      it('gives one applied hit back, so a used-up count applies again; never below zero; matched and lastHitAt kept; gone or another namespace’s: false', async () => {
        const store = await make(ROOMY);
        const rule = aRule({ count: 1 });
        await store.create('default', rule);
        expect(await store.claimHit('default', rule.id, true, T0)).toEqual({ kind: 'applied', hits: 1 });
        expect(await store.claimHit('default', rule.id, true, T0 + 1)).toEqual({ kind: 'skipped', reason: 'exhausted' });
        expect(await store.releaseHit('other', rule.id)).toBe(false);
        expect(await store.releaseHit('default', rule.id)).toBe(true);
        expect(await store.get('default', rule.id)).toMatchObject({ hits: 0, matched: 2, lastHitAt: T0 });
        expect(await store.releaseHit('default', rule.id)).toBe(false);
        expect(await store.counters('default')).toEqual([{ id: rule.id, hits: 0, matched: 2 }]);
        expect(await store.claimHit('default', rule.id, true, T0 + 2)).toEqual({ kind: 'applied', hits: 1 });
        await store.delete('default', rule.id);
        expect(await store.releaseHit('default', rule.id)).toBe(false);
      });

      it('100 concurrent claims and releases of a rule of count 5: each release makes room for one claim, never more than 5 held at once', async () => {
        const store = await make(ROOMY);
        const rule = aRule({ count: 5 });
        await store.create('default', rule);
        const outcomes = await concurrently(100, async () => {
          const claimed = await store.claimHit('default', rule.id, true, T0);
          if (claimed.kind === 'applied') expect(claimed.hits).toBeLessThanOrEqual(5);
          if (claimed.kind === 'applied') await store.releaseHit('default', rule.id);
          return claimed;
        });
        expect(tally(outcomes).applied).toBeGreaterThanOrEqual(5);
        expect(await store.counters('default')).toEqual([{ id: rule.id, hits: 0, matched: 100 }]);
      });
    });

    describe('bounds', () => {
      it('refuses a rule beyond maxRules (across namespaces), saying the maximum; a delete makes room', async () => {
        const store = await make({ maxRules: 3 });
        const rules = [aRule(), aRule(), aRule()];
        await store.create('a', rules[0]!);
        await store.create('b', rules[1]!);
        await store.create('b', rules[2]!);
        expect(await store.create('c', aRule())).toEqual({ ok: false, reason: 'full', max: 3 });
        expect(await store.stats()).toEqual({ size: 3, max: 3 });
        expect(await store.list('c')).toEqual([]);
        await store.delete('b', rules[1]!.id);
        expect(await store.create('c', aRule())).toEqual({ ok: true });
      });

      it('concurrent creates beyond the bound: exactly as many as fit are taken', async () => {
        const store = await make({ maxRules: 10 });
        const outcomes = await concurrently(50, () => store.create('default', aRule()));
        expect(outcomes.filter((o) => o.ok)).toHaveLength(10);
        expect(await store.stats()).toEqual({ size: 10, max: 10 });
      });
    });
  });
}
