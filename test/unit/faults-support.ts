import type { FaultRule } from '../../src/core/faults/model.ts';
import type { RandomSource } from '../../src/core/random.ts';
import { parseRule } from '../../src/core/faults/validation.ts';

/** Shared fixtures for the fault-rule tests (not a test file itself). */

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

let sequence = 0;

/** A rule from its JSON, as POST /v1/sim/rules would make it (created at `now`); throws on invalid JSON. */
export function ruleFrom(json: unknown, options: { id?: string; now?: number } = {}): FaultRule {
  const now = options.now ?? T0;
  const parsed = parseRule(json, { now });
  if (!parsed.ok) throw new Error(`invalid rule in a test: ${JSON.stringify(parsed.issues)}`);
  return { ...parsed.value.input, id: options.id ?? `rule_${(++sequence).toString().padStart(6, '0')}`, createdAt: now } as FaultRule;
}

/** A source that returns the given values in turn (then fails), and counts its draws. */
export function scripted(values: readonly number[]): RandomSource & { draws: number } {
  const source = {
    draws: 0,
    next(): number {
      const value = values[source.draws++];
      if (value === undefined) throw new Error('scripted random source ran out of values');
      return value;
    },
  };
  return source;
}

/** The q-quantile (0–1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
