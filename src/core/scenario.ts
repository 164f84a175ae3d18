import { validationFailed, type FieldIssue } from './errors.ts';
import { pickMix, type Mix } from './faults/mix.ts';
import type { RandomSource } from './random.ts';
import { scaled } from './time-scale.ts';

/**
 * The scenario engine: given what the client asked for, the configuration, the current time and a
 * random source, it decides how a payment ends and when. It is pure apart from drawing from the
 * random source, so seeded runs repeat exactly.
 * @see ../../shared/seeds/000_b3f315eb75f1c703.txt (scenarios), issue 2 (card rules)
 */

export const SCENARIOS = ['approve', 'fail', 'delay', 'random', 'mix'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/**
 * What a request asks for: a named scenario, or the weights of a mix it sent (scenario `mix` with
 * `approve:90,fail:7,delay:3`). The bare name `mix` means the `MIX` setting's weights.
 */
export type ScenarioRequest = Scenario | Mix;

/** What a request asks of the scenario engine where a service takes both: its scenario (or mix), and the outcome a fault rule forces (issue 15). */
export interface OutcomeRequest {
  scenario?: ScenarioRequest | undefined;
  forced?: ForcedOutcome | undefined;
}
/** What decided the outcome: a named scenario, or the card data when no scenario was given. */
export type DecisionSource = Scenario | 'card';

export interface CardInput {
  number?: string | undefined;
  cvv?: string | undefined;
  exp_month?: number | undefined;
  exp_year?: number | undefined;
}

export interface ScenarioConfig {
  /** The default delays are already scaled by TIME_SCALE (at config load); a request's own `delay_ms` is scaled by `timeScale` here. */
  approveDelayMs: number;
  failDelayMs: number;
  delayDelayMs: number;
  randomApproveRate: number;
  /** The `MIX` setting: the weights of scenario `mix` when a request sends none, and the outcome of a payment that names no scenario and gives no card. */
  mix?: Mix | undefined;
  /** TIME_SCALE (issue 15); unset: 1. */
  timeScale?: number | undefined;
}

export type Outcome = { status: 'APPROVED'; failureCode: null } | { status: 'FAILED'; failureCode: string };

export interface Decision {
  source: DecisionSource;
  outcome: Outcome;
  delayMs: number;
  /** The `delay` scenario decided (named, or picked by a mix): the answer itself is late, where a dialect answers with the outcome. */
  delayed: boolean;
}

export interface DecisionInput {
  scenario?: ScenarioRequest | undefined;
  delayMs?: number | undefined;
  card?: CardInput | undefined;
  /** A fault rule's `outcome` (issue 15): approve (`failureCode` null) or fail with the code, whatever the scenario or the card says. */
  forced?: ForcedOutcome | undefined;
}

export interface ForcedOutcome {
  failureCode: string | null;
  /**
   * Set by the service that stored a payment created or decided with this outcome (`markApplied`):
   * a rule's outcome taken by a request that stored none (refused, replayed) is given back.
   */
  applied?: boolean;
}

/** Says that the forced outcome, when there is one, decided a payment now stored. */
export function markApplied(forced: ForcedOutcome | undefined): void {
  if (forced !== undefined) forced.applied = true;
}

const APPROVED: Outcome = Object.freeze({ status: 'APPROVED', failureCode: null });

/** One object per failure code: intents keep their planned outcome, and a million declines need not be a million objects. */
const FAILED_BY_CODE = new Map<string, Outcome>();

function failed(failureCode: string): Outcome {
  let outcome = FAILED_BY_CODE.get(failureCode);
  if (outcome === undefined) {
    outcome = Object.freeze({ status: 'FAILED', failureCode });
    FAILED_BY_CODE.set(failureCode, outcome);
  }
  return outcome;
}

/**
 * Stripe's published test numbers and what they do.
 * @see https://docs.stripe.com/testing#declined-payments
 */
const TEST_CARDS: ReadonlyMap<string, Outcome> = new Map([
  ['4242424242424242', APPROVED],
  ['4000000000000002', failed('card_declined')],
  ['4000000000009995', failed('insufficient_funds')],
  ['4000000000000069', failed('expired_card')],
  ['4000000000000127', failed('incorrect_cvc')],
  ['4000000000000119', failed('processing_error')],
]);

/** CVV last digits that approve; any other digit d declines with `DECLINE_<d>` (document 003). */
const APPROVING_CVV_DIGITS = new Set(['0', '1', '9']);

export function decide(input: DecisionInput, config: ScenarioConfig, random: RandomSource, now: number): Decision {
  if (input.card !== undefined) assertValidCard(input.card);
  const requested = input.scenario;
  const mix = typeof requested === 'object' ? requested : requested === 'mix' || (requested === undefined && input.card === undefined) ? config.mix : undefined;
  if (requested === 'mix' && mix === undefined) throw validationFailed([MIX_WITHOUT_WEIGHTS]);
  // A mix picks one of the scenarios that decide by themselves, then decides as that one would.
  const effective: Exclude<DecisionSource, 'mix'> =
    mix !== undefined ? pickMix(mix, random) : typeof requested === 'string' && requested !== 'mix' ? requested : input.card === undefined ? 'approve' : 'card';
  const source: DecisionSource = mix === undefined ? effective : 'mix';
  // Decided as usual even when forced, so a seeded stream draws the same numbers with or without the rule.
  const natural = outcomeFor(effective, input.card, config, random, now);
  const outcome = input.forced === undefined ? natural : forcedOutcome(input.forced);
  const defaultDelay = effective === 'delay' ? config.delayDelayMs : outcome.status === 'APPROVED' ? config.approveDelayMs : config.failDelayMs;
  const delayMs = input.delayMs === undefined ? defaultDelay : scaled(input.delayMs, config.timeScale ?? 1);
  return { source, outcome, delayMs, delayed: effective === 'delay' };
}

export const MIX_WITHOUT_WEIGHTS: FieldIssue = {
  in: 'body',
  field: '/scenario',
  rule: 'mix_needs_weights',
  message: 'mix needs weights such as approve:90,fail:7,delay:3: send them with the request (the mix field, or the X-Sim-Mix header) or set MIX',
};

/** The outcome a fault rule forces. */
export function forcedOutcome(forced: ForcedOutcome): Outcome {
  return forced.failureCode === null ? APPROVED : failed(forced.failureCode);
}

function outcomeFor(source: Exclude<DecisionSource, 'mix'>, card: CardInput | undefined, config: ScenarioConfig, random: RandomSource, now: number): Outcome {
  switch (source) {
    case 'approve':
    case 'delay':
      return APPROVED;
    case 'fail':
      return failed('card_declined');
    case 'random':
      return random.next() < config.randomApproveRate ? APPROVED : failed('card_declined');
    case 'card':
      return cardOutcome(card ?? {}, now);
  }
}

/**
 * The card rules, shared by every API that takes card data: an expiry in the past fails with
 * `expired_card`; a test number has its fixed outcome; otherwise the CVV's last digit decides, and
 * a card without a CVV approves. Call `assertValidCard` first.
 */
export function cardOutcome(card: CardInput, now: number): Outcome {
  if (isExpired(card, now)) return failed('expired_card');
  const known = card.number === undefined ? undefined : TEST_CARDS.get(card.number);
  if (known !== undefined) return known;
  return card.cvv === undefined ? APPROVED : cvvOutcome(card.cvv);
}

/**
 * Every failure code a card decides by itself (a test number, an expired card, a declining CVV
 * digit), for the metrics that count by it from the start. A fault rule's `outcome` may add others.
 */
export const CARD_FAILURE_CODES: readonly string[] = [
  ...new Set([
    'expired_card',
    ...[...TEST_CARDS.values()].flatMap((outcome) => (outcome.failureCode === null ? [] : [outcome.failureCode])),
    ...'0123456789'.split('').flatMap((digit) => (APPROVING_CVV_DIGITS.has(digit) ? [] : [`DECLINE_${digit}`])),
  ]),
];

export function cvvOutcome(cvv: string): Outcome {
  const last = cvv.at(-1) ?? '';
  return APPROVING_CVV_DIGITS.has(last) ? APPROVED : failed(`DECLINE_${last}`);
}

/** Throws VALIDATION_FAILED naming every broken card rule; schemas check shapes, this checks meaning. */
export function assertValidCard(card: CardInput): void {
  const issues = cardIssues(card);
  if (issues.length > 0) throw validationFailed(issues);
}

export function cardIssues(card: CardInput): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (card.number !== undefined && !(/^\d{12,19}$/.test(card.number) && luhnValid(card.number))) {
    issues.push({ in: 'body', field: '/card/number', rule: 'incorrect_number', message: 'must be 12 to 19 digits passing the Luhn check' });
  }
  if (card.cvv !== undefined && !/^\d{3,4}$/.test(card.cvv)) {
    issues.push({ in: 'body', field: '/card/cvv', rule: 'invalid_cvc', message: 'must be 3 or 4 digits' });
  }
  if (card.exp_month !== undefined && !(Number.isInteger(card.exp_month) && card.exp_month >= 1 && card.exp_month <= 12)) {
    issues.push({ in: 'body', field: '/card/exp_month', rule: 'invalid_expiry_month', message: 'must be an integer from 1 to 12' });
  }
  if (card.exp_year !== undefined && !(Number.isInteger(card.exp_year) && card.exp_year >= 2000 && card.exp_year <= 2199)) {
    issues.push({ in: 'body', field: '/card/exp_year', rule: 'invalid_expiry_year', message: 'must be a four-digit year from 2000 to 2199' });
  }
  if ((card.exp_month === undefined) !== (card.exp_year === undefined)) {
    const missing = card.exp_month === undefined ? 'exp_month' : 'exp_year';
    issues.push({ in: 'body', field: `/card/${missing}`, rule: 'required_with_expiry', message: 'exp_month and exp_year are given together' });
  }
  return issues;
}

/** A card is valid through the last millisecond of its expiry month (UTC). */
function isExpired(card: CardInput, now: number): boolean {
  if (card.exp_month === undefined || card.exp_year === undefined) return false;
  const firstOfNextMonth = Date.UTC(card.exp_year, card.exp_month, 1);
  return now >= firstOfNextMonth;
}

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}
