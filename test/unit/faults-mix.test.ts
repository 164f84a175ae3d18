import { describe, expect, it } from 'vitest';
import { formatMix, parseMix, pickMix, type Mix } from '../../src/core/faults/mix.ts';
import { createRandom } from '../../src/core/random.ts';
import { scripted } from './faults-support.ts';

function mixOf(text: string): Mix {
  const parsed = parseMix(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.mix;
}

function messageOf(text: string): string {
  const parsed = parseMix(text);
  if (parsed.ok) throw new Error(`parseMix accepted ${text}`);
  return parsed.message;
}

describe('parseMix', () => {
  it('reads name:weight pairs in order, with their total', () => {
    const mix = mixOf('approve:90,fail:7,delay:3');
    expect(mix.entries).toEqual([
      { outcome: 'approve', weight: 90 },
      { outcome: 'fail', weight: 7 },
      { outcome: 'delay', weight: 3 },
    ]);
    expect(mix.total).toBe(100);
    expect(mix.cumulative).toEqual([90, 97, 100]);
  });

  it('allows spaces around names, colons and commas; weights need not add up to 100; a weight may be 0', () => {
    const mix = mixOf(' approve : 1 , fail:0,delay: 2 ');
    expect(formatMix(mix)).toBe('approve:1,fail:0,delay:2');
    expect(mix.total).toBe(3);
  });

  it('takes the outcomes a caller allows', () => {
    const parsed = parseMix('ok:1,declined:3', ['ok', 'declined'] as const);
    expect(parsed).toMatchObject({ ok: true, mix: { total: 4 } });
    expect(parseMix('approve:1', ['ok', 'declined'])).toEqual({ ok: false, message: 'names an unknown outcome "approve" (outcomes: ok, declined)' });
  });

  it.each([
    ['', 'must be weighted outcomes such as approve:90,fail:7,delay:3 (outcomes: approve, fail, delay)'],
    ['approve', 'must be weighted outcomes such as approve:90,fail:7,delay:3 (outcomes: approve, fail, delay); "approve" is not name:weight'],
    ['approve:90,,fail:10', 'must be weighted outcomes such as approve:90,fail:7,delay:3 (outcomes: approve, fail, delay); "" is not name:weight'],
    ['approve:90,refund:10', 'names an unknown outcome "refund" (outcomes: approve, fail, delay)'],
    ['random:1', 'names an unknown outcome "random" (outcomes: approve, fail, delay)'],
    ['approve:9.5', 'gives approve the weight "9.5"; a weight is an integer from 0 to 1000000'],
    ['approve:-1', 'gives approve the weight "-1"; a weight is an integer from 0 to 1000000'],
    ['approve:', 'gives approve the weight ""; a weight is an integer from 0 to 1000000'],
    ['approve:1000001', 'gives approve the weight "1000001"; a weight is an integer from 0 to 1000000'],
    ['approve:1,approve:2', 'must give each outcome once (approve is given twice)'],
    ['approve:0,fail:0', 'must give at least one outcome a weight above 0'],
  ])('refuses %j: %s', (text, message) => {
    expect(messageOf(text)).toBe(message);
  });

  it('refuses overlong text', () => {
    expect(messageOf(`approve:1${',fail:1'.repeat(40)}`)).toBe('must be at most 200 characters');
  });
});

describe('pickMix', () => {
  it('maps one draw onto the weights: [0, 0.9) approve, [0.9, 0.97) fail, [0.97, 1) delay', () => {
    const mix = mixOf('approve:90,fail:7,delay:3');
    const picks = [0, 0.8999, 0.9, 0.9699, 0.97, 0.99999].map((u) => pickMix(mix, scripted([u])));
    expect(picks).toEqual(['approve', 'approve', 'fail', 'fail', 'delay', 'delay']);
  });

  it('never picks an outcome of weight 0, even at the edges', () => {
    const mix = mixOf('approve:0,fail:1,delay:0');
    for (const u of [0, 0.5, 0.999999]) expect(pickMix(mix, scripted([u]))).toBe('fail');
    const random = createRandom(9);
    for (let i = 0; i < 1_000; i++) expect(pickMix(mix, random)).toBe('fail');
  });

  it('100,000 seeded picks follow the weights within half a percentage point', () => {
    const mix = mixOf('approve:90,fail:7,delay:3');
    const random = createRandom(2026);
    const counts: Record<string, number> = { approve: 0, fail: 0, delay: 0 };
    const n = 100_000;
    for (let i = 0; i < n; i++) counts[pickMix(mix, random)]! += 1;
    expect(Math.abs(counts.approve! / n - 0.9)).toBeLessThan(0.005);
    expect(Math.abs(counts.fail! / n - 0.07)).toBeLessThan(0.005);
    expect(Math.abs(counts.delay! / n - 0.03)).toBeLessThan(0.005);
  });

  it('is deterministic: the same seed picks the same sequence, another seed another', () => {
    const mix = mixOf('approve:50,fail:30,delay:20');
    const run = (seed: number) => {
      const random = createRandom(seed);
      return Array.from({ length: 200 }, () => pickMix(mix, random));
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });

  it('draws exactly one number per pick', () => {
    const random = scripted([0.1, 0.95, 0.99]);
    const mix = mixOf('approve:90,fail:7,delay:3');
    expect([pickMix(mix, random), pickMix(mix, random), pickMix(mix, random)]).toEqual(['approve', 'fail', 'delay']);
    expect(random.draws).toBe(3);
  });
});
