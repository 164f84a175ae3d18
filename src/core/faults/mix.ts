import type { RandomSource } from '../random.ts';

/**
 * The weighted outcome mix of load tests: `approve:90,fail:7,delay:3` picks `approve` for 90 % of
 * requests, `fail` for 7 % and `delay` for 3 %, drawing one number from the (seeded) random
 * source per pick, so a seeded run picks the same sequence every time. Given per request (scenario
 * `mix`) or as a dialect's default (`MIX`).
 * @see issue 15 "Load-test controls" (weighted outcome mix)
 */

/** The outcomes a mix may name: the scenarios that decide by themselves (not `random`, which is a mix of its own). */
export const MIX_OUTCOMES = ['approve', 'fail', 'delay'] as const;
export type MixOutcome = (typeof MIX_OUTCOMES)[number];

export const MAX_MIX_WEIGHT = 1_000_000;
const MAX_MIX_TEXT = 200;

export interface MixEntry<T extends string = MixOutcome> {
  outcome: T;
  weight: number;
}

export interface Mix<T extends string = MixOutcome> {
  entries: readonly MixEntry<T>[];
  /** Sum of the weights (> 0). */
  total: number;
  /** Running sums of the weights, for the pick. */
  readonly cumulative: readonly number[];
}

export type MixParse<T extends string> = { ok: true; mix: Mix<T> } | { ok: false; message: string };

/**
 * Parses `name:weight` pairs separated by commas (spaces around either are allowed). Weights are
 * integers from 0 to MAX_MIX_WEIGHT, not all 0; each name once. The message completes
 * "`MIX` …" or "`scenario` …": `must give each outcome once (approve is given twice)`.
 */
export function parseMix<T extends string = MixOutcome>(text: string, allowed: readonly T[] = MIX_OUTCOMES as unknown as readonly T[]): MixParse<T> {
  const shape = `must be weighted outcomes such as approve:90,fail:7,delay:3 (outcomes: ${allowed.join(', ')})`;
  if (text.length > MAX_MIX_TEXT) return { ok: false, message: `must be at most ${MAX_MIX_TEXT} characters` };
  if (text.trim() === '') return { ok: false, message: shape };
  const entries: MixEntry<T>[] = [];
  for (const part of text.split(',')) {
    const pair = /^\s*([A-Za-z_]+)\s*:\s*([^\s,]*)\s*$/.exec(part);
    if (pair === null) return { ok: false, message: `${shape}; "${part.trim()}" is not name:weight` };
    const [, name, weightText] = pair as unknown as [string, string, string];
    if (!(allowed as readonly string[]).includes(name)) return { ok: false, message: `names an unknown outcome "${name}" (outcomes: ${allowed.join(', ')})` };
    if (!/^\d+$/.test(weightText) || Number(weightText) > MAX_MIX_WEIGHT) return { ok: false, message: `gives ${name} the weight "${weightText}"; a weight is an integer from 0 to ${MAX_MIX_WEIGHT}` };
    if (entries.some((e) => e.outcome === name)) return { ok: false, message: `must give each outcome once (${name} is given twice)` };
    entries.push({ outcome: name as T, weight: Number(weightText) });
  }
  let total = 0;
  const cumulative = entries.map((e) => (total += e.weight));
  if (total === 0) return { ok: false, message: 'must give at least one outcome a weight above 0' };
  return { ok: true, mix: { entries, total, cumulative } };
}

/** Picks an outcome with probability weight / total, from one draw. Outcomes of weight 0 are never picked. */
export function pickMix<T extends string>(mix: Mix<T>, random: RandomSource): T {
  const ticket = Math.floor(random.next() * mix.total);
  const { cumulative, entries } = mix;
  // Few entries: a linear scan beats a binary search.
  for (let i = 0; i < cumulative.length; i++) {
    if (ticket < (cumulative[i] as number)) return (entries[i] as MixEntry<T>).outcome;
  }
  // Unreachable for next() < 1; the last outcome of weight > 0 if a source ever returned 1.
  return ([...entries].reverse().find((e) => e.weight > 0) as MixEntry<T>).outcome;
}

/** The mix as text, as it was given but normalized (`approve:90,fail:7,delay:3`). */
export function formatMix<T extends string>(mix: Mix<T>): string {
  return mix.entries.map((e) => `${e.outcome}:${e.weight}`).join(',');
}
