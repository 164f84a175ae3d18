import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/core/errors.ts';
import { parseMix, pickMix, type Mix } from '../../src/core/faults/mix.ts';
import { createRandom } from '../../src/core/random.ts';
import { assertValidCard, cardIssues, cardOutcome, cvvOutcome, decide, luhnValid, type CardInput } from '../../src/core/scenario.ts';
import { SCENARIOS, scriptedRandom } from './support.ts';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const APPROVED = { status: 'APPROVED', failureCode: null } as const;
const declined = (failureCode: string) => ({ status: 'FAILED', failureCode }) as const;

/** A Luhn-valid number that is not one of the test cards, so the CVV rule applies. */
const PLAIN_CARD = '4111111111111111';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

describe('decide: scenarios', () => {
  it('approve → APPROVED after approveDelayMs', () => {
    expect(decide({ scenario: 'approve' }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'approve', outcome: APPROVED, delayMs: 200, delayed: false });
  });

  it('fail → FAILED card_declined after failDelayMs', () => {
    expect(decide({ scenario: 'fail' }, SCENARIOS, scriptedRandom(), NOW)).toEqual({
      source: 'fail',
      outcome: declined('card_declined'),
      delayMs: 100,
      delayed: false,
    });
  });

  it('delay → APPROVED after delayDelayMs', () => {
    expect(decide({ scenario: 'delay' }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'delay', outcome: APPROVED, delayMs: 3000, delayed: true });
  });

  it('delay → APPROVED after input.delayMs when given', () => {
    expect(decide({ scenario: 'delay', delayMs: 1234 }, SCENARIOS, scriptedRandom(), NOW)).toEqual({
      source: 'delay',
      outcome: APPROVED,
      delayMs: 1234,
      delayed: true,
    });
  });

  it('random approves when the draw is below randomApproveRate', () => {
    const random = scriptedRandom(0.7999);
    expect(decide({ scenario: 'random' }, SCENARIOS, random, NOW)).toEqual({ source: 'random', outcome: APPROVED, delayMs: 200, delayed: false });
    expect(random.calls).toBe(1);
  });

  it('random fails with card_declined when the draw equals or exceeds the rate, after failDelayMs', () => {
    expect(decide({ scenario: 'random' }, SCENARIOS, scriptedRandom(0.8), NOW)).toEqual({
      source: 'random',
      outcome: declined('card_declined'),
      delayMs: 100,
      delayed: false,
    });
    expect(decide({ scenario: 'random' }, SCENARIOS, scriptedRandom(0.95), NOW).outcome).toEqual(declined('card_declined'));
  });

  it.each(['approve', 'fail', 'delay', 'random'] as const)('input.delayMs overrides the delay of %s', (scenario) => {
    expect(decide({ scenario, delayMs: 7 }, SCENARIOS, scriptedRandom(0.5), NOW).delayMs).toBe(7);
  });

  it('input.delayMs of 0 is honoured, not treated as unset', () => {
    expect(decide({ scenario: 'fail', delayMs: 0 }, SCENARIOS, scriptedRandom(), NOW).delayMs).toBe(0);
  });

  it('input.delayMs overrides the delay of a card decision too', () => {
    expect(decide({ card: { number: '4000000000000002' }, delayMs: 42 }, SCENARIOS, scriptedRandom(), NOW)).toEqual({
      source: 'card',
      outcome: declined('card_declined'),
      delayMs: 42,
      delayed: false,
    });
  });

  it('no scenario and no card → approve', () => {
    expect(decide({}, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'approve', outcome: APPROVED, delayMs: 200, delayed: false });
  });

  it('only the random scenario draws from the random source', () => {
    const random = scriptedRandom();
    for (const scenario of ['approve', 'fail', 'delay'] as const) decide({ scenario }, SCENARIOS, random, NOW);
    decide({ card: { number: PLAIN_CARD, cvv: '123' } }, SCENARIOS, random, NOW);
    expect(random.calls).toBe(0);
  });

  it('uses the configured delays, not built-in ones', () => {
    const config = { approveDelayMs: 11, failDelayMs: 22, delayDelayMs: 33, randomApproveRate: 0.5 };
    expect(decide({ scenario: 'approve' }, config, scriptedRandom(), NOW).delayMs).toBe(11);
    expect(decide({ scenario: 'fail' }, config, scriptedRandom(), NOW).delayMs).toBe(22);
    expect(decide({ scenario: 'delay' }, config, scriptedRandom(), NOW).delayMs).toBe(33);
    expect(decide({ scenario: 'random' }, config, scriptedRandom(0.49), NOW)).toEqual({ source: 'random', outcome: APPROVED, delayMs: 11, delayed: false });
    expect(decide({ scenario: 'random' }, config, scriptedRandom(0.5), NOW)).toEqual({
      source: 'random',
      outcome: declined('card_declined'),
      delayMs: 22,
      delayed: false,
    });
  });
});

describe('decide: cards', () => {
  it('a card without a scenario is decided by the card rules (source card)', () => {
    expect(decide({ card: { number: PLAIN_CARD, cvv: '442' } }, SCENARIOS, scriptedRandom(), NOW)).toEqual({
      source: 'card',
      outcome: declined('DECLINE_2'),
      delayMs: 100,
      delayed: false,
    });
  });

  it('an approving card outcome uses approveDelayMs', () => {
    expect(decide({ card: { number: PLAIN_CARD, cvv: '449' } }, SCENARIOS, scriptedRandom(), NOW)).toEqual({
      source: 'card',
      outcome: APPROVED,
      delayMs: 200,
      delayed: false,
    });
  });

  it('an empty card object approves via the card rules', () => {
    expect(decide({ card: {} }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'card', outcome: APPROVED, delayMs: 200, delayed: false });
  });

  it('with a scenario and a card, the scenario decides', () => {
    const card = { number: '4000000000000002', cvv: '442' };
    expect(decide({ scenario: 'approve', card }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'approve', outcome: APPROVED, delayMs: 200, delayed: false });
    expect(decide({ scenario: 'delay', card }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'delay', outcome: APPROVED, delayMs: 3000, delayed: true });
  });

  it('with a scenario and an invalid card, the card is still validated', () => {
    const error = thrown(() => decide({ scenario: 'approve', card: { cvv: '12' } }, SCENARIOS, scriptedRandom(), NOW));
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      code: 'VALIDATION_FAILED',
      details: [{ in: 'body', field: '/card/cvv', rule: 'invalid_cvc', message: 'must be 3 or 4 digits' }],
    });
  });

  it('an invalid card is rejected before the random source is drawn from', () => {
    const random = scriptedRandom();
    expect(() => decide({ scenario: 'random', card: { number: '4242424242424241' } }, SCENARIOS, random, NOW)).toThrow(DomainError);
    expect(random.calls).toBe(0);
  });
});

describe('cvvOutcome', () => {
  const expected: Record<string, ReturnType<typeof cvvOutcome>> = {
    '0': APPROVED,
    '1': APPROVED,
    '2': declined('DECLINE_2'),
    '3': declined('DECLINE_3'),
    '4': declined('DECLINE_4'),
    '5': declined('DECLINE_5'),
    '6': declined('DECLINE_6'),
    '7': declined('DECLINE_7'),
    '8': declined('DECLINE_8'),
    '9': APPROVED,
  };

  it.each(Object.entries(expected))('3-digit CVV ending in %s', (digit, outcome) => {
    expect(cvvOutcome(`12${digit}`)).toEqual(outcome);
  });

  it.each(Object.entries(expected))('4-digit CVV ending in %s', (digit, outcome) => {
    expect(cvvOutcome(`555${digit}`)).toEqual(outcome);
  });

  it('only the last digit matters ("442" → DECLINE_2, "920" approves)', () => {
    expect(cvvOutcome('442')).toEqual(declined('DECLINE_2'));
    expect(cvvOutcome('920')).toEqual(APPROVED);
  });
});

describe('cardOutcome', () => {
  it.each([
    ['4242424242424242', APPROVED],
    ['4000000000000002', declined('card_declined')],
    ['4000000000009995', declined('insufficient_funds')],
    ['4000000000000069', declined('expired_card')],
    ['4000000000000127', declined('incorrect_cvc')],
    ['4000000000000119', declined('processing_error')],
  ])('test card %s', (number, outcome) => {
    expect(cardOutcome({ number }, NOW)).toEqual(outcome);
  });

  it('4242424242424242 approves even with a declining CVV', () => {
    expect(cardOutcome({ number: '4242424242424242', cvv: '442' }, NOW)).toEqual(APPROVED);
  });

  it('a test card keeps its outcome whatever the CVV', () => {
    expect(cardOutcome({ number: '4000000000009995', cvv: '111' }, NOW)).toEqual(declined('insufficient_funds'));
  });

  it('any other Luhn-valid number follows the CVV rule', () => {
    expect(cardOutcome({ number: PLAIN_CARD, cvv: '123' }, NOW)).toEqual(declined('DECLINE_3'));
    expect(cardOutcome({ number: PLAIN_CARD, cvv: '121' }, NOW)).toEqual(APPROVED);
    expect(cardOutcome({ number: '5555555555554444', cvv: '8888' }, NOW)).toEqual(declined('DECLINE_8'));
  });

  it('any other Luhn-valid number approves without a CVV', () => {
    expect(cardOutcome({ number: PLAIN_CARD }, NOW)).toEqual(APPROVED);
  });

  it('a CVV without a number follows the CVV rule', () => {
    expect(cardOutcome({ cvv: '447' }, NOW)).toEqual(declined('DECLINE_7'));
  });

  describe('expiry (valid through the end of the month, UTC)', () => {
    const card: CardInput = { number: PLAIN_CARD, exp_month: 1, exp_year: 2026 };
    const firstOfFeb = Date.UTC(2026, 1, 1);

    it('approves during the expiry month', () => {
      expect(cardOutcome(card, Date.UTC(2026, 0, 1))).toEqual(APPROVED);
    });

    it('approves at the last millisecond of the expiry month', () => {
      expect(cardOutcome(card, firstOfFeb - 1)).toEqual(APPROVED);
    });

    it('fails with expired_card at the first millisecond of the next month', () => {
      expect(cardOutcome(card, firstOfFeb)).toEqual(declined('expired_card'));
    });

    it('December rolls over to January of the next year', () => {
      const december: CardInput = { exp_month: 12, exp_year: 2025 };
      expect(cardOutcome(december, Date.UTC(2026, 0, 1) - 1)).toEqual(APPROVED);
      expect(cardOutcome(december, Date.UTC(2026, 0, 1))).toEqual(declined('expired_card'));
    });

    it('an expired card fails with expired_card even when its number or CVV would approve', () => {
      expect(cardOutcome({ number: '4242424242424242', exp_month: 12, exp_year: 2025 }, NOW)).toEqual(declined('expired_card'));
      expect(cardOutcome({ number: PLAIN_CARD, cvv: '120', exp_month: 12, exp_year: 2025 }, NOW)).toEqual(declined('expired_card'));
    });

    it('a future expiry does not change the outcome', () => {
      expect(cardOutcome({ number: '4000000000000002', exp_month: 12, exp_year: 2030 }, NOW)).toEqual(declined('card_declined'));
    });

    it('decide applies the expiry with the given now and failDelayMs', () => {
      expect(decide({ card }, SCENARIOS, scriptedRandom(), firstOfFeb)).toEqual({
        source: 'card',
        outcome: declined('expired_card'),
        delayMs: 100,
        delayed: false,
      });
      expect(decide({ card }, SCENARIOS, scriptedRandom(), firstOfFeb - 1)).toEqual({ source: 'card', outcome: APPROVED, delayMs: 200, delayed: false });
    });
  });
});

describe('cardIssues / assertValidCard', () => {
  const numberIssue = { in: 'body', field: '/card/number', rule: 'incorrect_number', message: 'must be 12 to 19 digits passing the Luhn check' };
  const cvvIssue = { in: 'body', field: '/card/cvv', rule: 'invalid_cvc', message: 'must be 3 or 4 digits' };

  it('a valid card has no issues', () => {
    expect(cardIssues({ number: '4242424242424242', cvv: '123', exp_month: 1, exp_year: 2030 })).toEqual([]);
    expect(cardIssues({})).toEqual([]);
    expect(() => assertValidCard({ number: PLAIN_CARD, cvv: '1234' })).not.toThrow();
  });

  it.each(['12', '12345', '', 'abc', '12a', ' 123', '１２３'])('CVV %j is invalid', (cvv) => {
    expect(cardIssues({ cvv })).toEqual([cvvIssue]);
  });

  it.each(['4242424242424241', '4000000000000001', '1234567890123', 'abcd', '', '4242 4242 4242 4242', '00000000000', '42424242424242424242'])(
    'number %j is rejected',
    (number) => {
      expect(cardIssues({ number })).toEqual([numberIssue]);
    },
  );

  it('accepts Luhn-valid numbers of 12 and 19 digits', () => {
    expect(cardIssues({ number: '000000000000' })).toEqual([]);
    expect(cardIssues({ number: '4222222222222222224' })).toEqual([]);
  });

  it('exp_month without exp_year (and vice versa) is an issue on the missing field', () => {
    expect(cardIssues({ exp_month: 5 })).toEqual([
      { in: 'body', field: '/card/exp_year', rule: 'required_with_expiry', message: 'exp_month and exp_year are given together' },
    ]);
    expect(cardIssues({ exp_year: 2030 })).toEqual([
      { in: 'body', field: '/card/exp_month', rule: 'required_with_expiry', message: 'exp_month and exp_year are given together' },
    ]);
  });

  it('reports every broken rule, in field order', () => {
    expect(cardIssues({ number: '1', cvv: '1', exp_month: 1 })).toEqual([
      numberIssue,
      cvvIssue,
      { in: 'body', field: '/card/exp_year', rule: 'required_with_expiry', message: 'exp_month and exp_year are given together' },
    ]);
  });

  it('assertValidCard throws VALIDATION_FAILED with the CVV issue', () => {
    const error = thrown(() => assertValidCard({ number: PLAIN_CARD, cvv: '12' }));
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ name: 'DomainError', code: 'VALIDATION_FAILED', message: 'body /card/cvv: must be 3 or 4 digits', details: [cvvIssue] });
  });

  it('assertValidCard throws VALIDATION_FAILED with the number issue', () => {
    const error = thrown(() => assertValidCard({ number: '4242424242424243' }));
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'body /card/number: must be 12 to 19 digits passing the Luhn check',
      details: [numberIssue],
    });
  });

  it('decide rejects a Luhn-invalid number', () => {
    const error = thrown(() => decide({ card: { number: '4000000000000003' } }, SCENARIOS, scriptedRandom(), NOW));
    expect(error).toMatchObject({ code: 'VALIDATION_FAILED', details: [numberIssue] });
  });
});

describe('luhnValid', () => {
  it.each(['4242424242424242', '4000000000000002', '4000000000009995', '4000000000000069', '4000000000000127', '4000000000000119', '79927398713'])(
    '%s is valid',
    (n) => expect(luhnValid(n)).toBe(true),
  );

  it.each(['4242424242424243', '79927398710', '1234567812345678'])('%s is invalid', (n) => expect(luhnValid(n)).toBe(false));
});

describe('cardIssues: expiry ranges', () => {
  it.each([
    [{ exp_month: 13, exp_year: 2030 }, [{ in: 'body', field: '/card/exp_month', rule: 'invalid_expiry_month', message: 'must be an integer from 1 to 12' }]],
    [{ exp_month: 0, exp_year: 2030 }, [{ in: 'body', field: '/card/exp_month', rule: 'invalid_expiry_month', message: 'must be an integer from 1 to 12' }]],
    [{ exp_month: 5, exp_year: 30 }, [{ in: 'body', field: '/card/exp_year', rule: 'invalid_expiry_year', message: 'must be a four-digit year from 2000 to 2199' }]],
  ] as Array<[CardInput, unknown]>)('%j', (card, issues) => {
    expect(cardIssues(card)).toEqual(issues);
  });
});

describe('decide: a fault rule’s forced outcome (issue 15)', () => {
  it('beats the scenario and the card, keeps the source, and draws what the scenario draws', () => {
    const random = scriptedRandom(0.1);
    expect(decide({ scenario: 'random', forced: { failureCode: 'insufficient_funds' } }, SCENARIOS, random, NOW)).toEqual({
      source: 'random',
      outcome: { status: 'FAILED', failureCode: 'insufficient_funds' },
      delayMs: 100,
      delayed: false,
    });
    expect(random.calls).toBe(1);
    expect(decide({ card: { number: '4000000000000002' }, forced: { failureCode: null } }, SCENARIOS, scriptedRandom(), NOW)).toEqual({ source: 'card', outcome: { status: 'APPROVED', failureCode: null }, delayMs: 200, delayed: false });
  });
});

function mixOf(text: string): Mix {
  const parsed = parseMix(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.mix;
}

describe('decide: the weighted mix (issue 15)', () => {
  const MIX = mixOf('approve:90,fail:7,delay:3');

  it('each pick decides as its scenario would: approve, fail (card_declined) or delay, with their delays; the source is mix', () => {
    expect(decide({ scenario: mixOf('approve:1') }, SCENARIOS, scriptedRandom(0.5), NOW)).toEqual({ source: 'mix', outcome: APPROVED, delayMs: 200, delayed: false });
    expect(decide({ scenario: mixOf('fail:1') }, SCENARIOS, scriptedRandom(0.5), NOW)).toEqual({ source: 'mix', outcome: declined('card_declined'), delayMs: 100, delayed: false });
    expect(decide({ scenario: mixOf('delay:1') }, SCENARIOS, scriptedRandom(0.5), NOW)).toEqual({ source: 'mix', outcome: APPROVED, delayMs: 3000, delayed: true });
    // One draw per pick: 0.95 of a total of 100 is ticket 95, inside fail's 90..96.
    expect(decide({ scenario: MIX }, SCENARIOS, scriptedRandom(0.95), NOW)).toEqual({ source: 'mix', outcome: declined('card_declined'), delayMs: 100, delayed: false });
    expect(decide({ scenario: MIX }, SCENARIOS, scriptedRandom(0.97), NOW)).toEqual({ source: 'mix', outcome: APPROVED, delayMs: 3000, delayed: true });
    expect(decide({ scenario: MIX, delayMs: 5 }, SCENARIOS, scriptedRandom(0.5), NOW)).toEqual({ source: 'mix', outcome: APPROVED, delayMs: 5, delayed: false });
  });

  it('the bare name mix takes the MIX setting; without one it is VALIDATION_FAILED naming both ways to give weights', () => {
    expect(decide({ scenario: 'mix' }, { ...SCENARIOS, mix: mixOf('fail:1') }, scriptedRandom(0.1), NOW)).toEqual({ source: 'mix', outcome: declined('card_declined'), delayMs: 100, delayed: false });
    const error = thrown(() => decide({ scenario: 'mix' }, SCENARIOS, scriptedRandom(), NOW)) as DomainError;
    expect(error).toBeInstanceOf(DomainError);
    expect({ code: error.code, details: error.details }).toEqual({
      code: 'VALIDATION_FAILED',
      details: [{ in: 'body', field: '/scenario', rule: 'mix_needs_weights', message: 'mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX' }],
    });
  });

  it('MIX decides a payment that names no scenario and gives no card; a named scenario or card data still decide theirs', () => {
    const config = { ...SCENARIOS, mix: mixOf('fail:1') };
    expect(decide({}, config, scriptedRandom(0.3), NOW)).toEqual({ source: 'mix', outcome: declined('card_declined'), delayMs: 100, delayed: false });
    expect(decide({ scenario: 'approve' }, config, scriptedRandom(), NOW)).toEqual({ source: 'approve', outcome: APPROVED, delayMs: 200, delayed: false });
    expect(decide({ card: { number: PLAIN_CARD, cvv: '123' } }, config, scriptedRandom(), NOW)).toEqual({ source: 'card', outcome: declined('DECLINE_3'), delayMs: 100, delayed: false });
  });

  it('a fault rule’s forced outcome beats the mix, which still draws its number (the seeded stream does not shift)', () => {
    const random = scriptedRandom(0.99, 0.2);
    expect(decide({ scenario: MIX, forced: { failureCode: 'processing_error' } }, SCENARIOS, random, NOW)).toEqual({ source: 'mix', outcome: declined('processing_error'), delayMs: 3000, delayed: true });
    expect(decide({ scenario: MIX }, SCENARIOS, random, NOW)).toEqual({ source: 'mix', outcome: APPROVED, delayMs: 200, delayed: false });
  });

  it('seeded: 10,000 picks repeat exactly and come within 1.5 points of the weights', () => {
    const run = (): string[] => {
      const random = createRandom(7);
      return Array.from({ length: 10_000 }, () => {
        const d = decide({ scenario: MIX }, SCENARIOS, random, NOW);
        return d.delayed ? 'delay' : d.outcome.status === 'APPROVED' ? 'approve' : 'fail';
      });
    };
    const first = run();
    expect(run()).toEqual(first);
    // The same picks as pickMix on the same stream: decide draws nothing else for a mix.
    const reference = createRandom(7);
    expect(first).toEqual(Array.from({ length: 10_000 }, () => pickMix(MIX, reference)));
    const share = (name: string) => (100 * first.filter((x) => x === name).length) / first.length;
    expect(Math.abs(share('approve') - 90)).toBeLessThan(1.5);
    expect(Math.abs(share('fail') - 7)).toBeLessThan(1.5);
    expect(Math.abs(share('delay') - 3)).toBeLessThan(1.5);
  });
});
