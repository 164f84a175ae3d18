import { isCurrency } from '../core/currency.ts';
import { DomainError, validationFailed } from '../core/errors.ts';
import { MAX_MIX_WEIGHT, MIX_OUTCOMES, parseMix, type Mix } from '../core/faults/mix.ts';
import { SCENARIOS, type ScenarioRequest } from '../core/scenario.ts';
import { isHttpUrl } from '../http/validators.ts';

/**
 * Reading the console's HTML form fields (every value a string) into the values the services
 * take, with the bounds the APIs' schemas use, so a form can never make what the API would refuse.
 * A bad field throws VALIDATION_FAILED naming it; the page shows the message beside the form.
 */

export type FormBody = Readonly<Record<string, string>>;

/**
 * A list filter's value from a page's query string: empty or `all` is every one (undefined); one
 * the page does not offer is said in `invalid` (as `<name> “<value>” is not one of …: not
 * applied.`) and not applied.
 */
export function offeredChoice<T extends string>(name: string, value: string | undefined, allowed: readonly T[], invalid: string[]): T | undefined {
  const v = (value ?? '').trim();
  if (v === '' || v === 'all') return undefined;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  invalid.push(`${name} “${v.slice(0, 100)}” is not one of ${allowed.join(', ')}: not applied.`);
  return undefined;
}

export function text(body: FormBody, name: string, options: { max: number; required?: boolean; pattern?: RegExp; rule?: string }): string | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') {
    if (options.required === true) throw validationFailed([{ field: name, rule: 'required', message: `${name} is required` }]);
    return undefined;
  }
  if (value.length > options.max) throw validationFailed([{ field: name, rule: 'maxLength', message: `${name} must be at most ${options.max} characters` }]);
  if (options.pattern !== undefined && !options.pattern.test(value)) throw validationFailed([{ field: name, rule: 'pattern', message: `${name} must be ${options.rule ?? 'valid'}` }]);
  return value;
}

/** A currency field: an ISO 4217 code in use, as the APIs' `iso4217` format takes it (before 2026-12-05 any three upper-case letters: `XYZ` made an intent). */
export function currency(body: FormBody, name: string): string | undefined {
  const value = text(body, name, { max: 3 });
  if (value !== undefined && !isCurrency(value)) throw validationFailed([{ field: name, rule: 'format', message: `${name} must be an ISO 4217 currency code such as KRW, USD or EUR` }]);
  return value;
}

export function integer(body: FormBody, name: string, options: { min: number; max: number; required?: boolean }): number | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') {
    if (options.required === true) throw validationFailed([{ field: name, rule: 'required', message: `${name} is required` }]);
    return undefined;
  }
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < options.min || n > options.max) {
    throw validationFailed([{ field: name, rule: 'range', message: `${name} must be a whole number from ${options.min} to ${options.max}` }]);
  }
  return n;
}

export function oneOf<T extends string>(body: FormBody, name: string, choices: readonly T[]): T | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') return undefined;
  if (!(choices as readonly string[]).includes(value)) throw validationFailed([{ field: name, rule: 'enum', message: `${name} must be one of ${choices.join(', ')}` }]);
  return value as T;
}

/** An absolute http(s) URL of at most 2048 characters (the APIs' WebhookUrl). */
export function httpUrl(body: FormBody, name: string, required = false): string | undefined {
  const value = text(body, name, { max: 2048, required });
  if (value === undefined) return undefined;
  if (!isHttpUrl(value)) throw validationFailed([{ field: name, rule: 'format', message: `${name} must be an absolute http(s) URL` }]);
  return value;
}

/** `application/x-www-form-urlencoded` into a plain object (the last of repeated names wins). */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const repeated = new Set<string>();
  for (const [key, value] of new URLSearchParams(body)) {
    if (key in out) repeated.add(key);
    out[key] = value;
  }
  // Which of two values was meant is not the console's to guess (as for a read's query).
  if (repeated.size > 0) {
    throw validationFailed([...repeated].map((field) => ({ field, rule: 'unique', message: `${field} is given more than once: each field takes one value` })));
  }
  return out;
}

/**
 * A JSON body sent to a console form (htmx's `json-enc`, a script) as a form: an object of text
 * fields, each refused (400, naming it) when it is not text, since the pages read every field as
 * one (a number or a list was a 500). Anything else (a list, a bare value) has no fields.
 */
export function checkJsonForm(body: unknown): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  const notText = Object.entries(body).flatMap(([field, value]) => (typeof value === 'string' ? [] : [field]));
  if (notText.length > 0) throw validationFailed(notText.map((field) => ({ field, rule: 'type', message: `${field} must be text, as a form sends it` })));
}

/** The form fields of the weights of scenario `mix`, one per outcome: `mix_approve`, `mix_fail`, `mix_delay`. */
export const MIX_WEIGHT_FIELDS = MIX_OUTCOMES.map((outcome) => [outcome, `mix_${outcome}`] as const);

/**
 * The create forms' scenario: the one chosen, or for `mix` the weights given in the form (sent as
 * the API's `mix`: each payment picks an outcome with probability weight / total), else the MIX
 * setting's (`defaultMix`); weights with the default scenario (the /api/v2 form's) mean mix, as
 * the API takes a mix without a scenario. Refused in the console's words, before anything is made: weights with
 * another scenario, a weight that is not a whole number from 0 to MAX_MIX_WEIGHT, all weights 0,
 * and mix with no weights when MIX is not set.
 */
export function scenarioChoice(body: FormBody, defaultMix: Mix | undefined): ScenarioRequest | undefined {
  const scenario = oneOf(body, 'scenario', SCENARIOS);
  const given: string[] = [];
  for (const [outcome, name] of MIX_WEIGHT_FIELDS) {
    const value = (body[name] ?? '').trim();
    if (value === '') continue;
    if (!/^\d+$/.test(value) || Number(value) > MAX_MIX_WEIGHT) throw refused(`The ${outcome} weight must be a whole number from 0 to ${MAX_MIX_WEIGHT.toLocaleString('en-US')}.`);
    given.push(`${outcome}:${value}`);
  }
  // As the API takes a mix without a scenario: weights with the default scenario mean mix.
  if (scenario !== 'mix' && (scenario !== undefined || given.length === 0)) {
    if (given.length > 0) throw refused(`Mix weights are for scenario mix, and the scenario chosen is ${scenario}: choose mix, or empty the weights.`);
    return scenario;
  }
  if (given.length === 0) {
    if (defaultMix === undefined) throw refused('Scenario mix needs weights: give approve, fail or delay a weight (MIX is not set, so there are no default weights).');
    return 'mix';
  }
  const parsed = parseMix(given.join(','));
  // The fields give each outcome once with a valid weight: only all-zero weights are left to refuse.
  if (!parsed.ok) throw refused('Scenario mix needs at least one weight above 0.');
  return parsed.mix;
}

function refused(message: string): DomainError {
  return new DomainError('VALIDATION_FAILED', message);
}
