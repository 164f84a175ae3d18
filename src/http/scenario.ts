import { DomainError } from '../core/errors.ts';
import { parseMix, type Mix } from '../core/faults/mix.ts';
import { MIX_WITHOUT_WEIGHTS, type Scenario, type ScenarioRequest } from '../core/scenario.ts';
import type { ValidationIssue } from './validation.ts';

/**
 * What a request asks the scenario engine for, from its scenario and its mix as sent (the native
 * API's `scenario` and `mix` fields; other dialects' `X-Sim-Scenario` and `X-Sim-Mix` headers):
 * the weights when a mix is sent (with scenario `mix` or none), the MIX setting's (`defaultMix`)
 * for scenario `mix` without them, else the scenario. A mix beside another scenario, one that does
 * not parse, or scenario `mix` with no weights anywhere is VALIDATION_FAILED, here at the edge:
 * before anything is created (a FluxPay charge makes its order and payment before it is decided).
 * @see issue 15 "Load-test controls" (weighted outcome mix)
 */
export function requestedScenario(scenario: Scenario | undefined, mixText: string | undefined, where: 'body' | 'headers', defaultMix: Mix | undefined): ScenarioRequest | undefined {
  const fields = FIELDS[where];
  if (mixText === undefined) {
    if (scenario !== 'mix') return scenario;
    if (defaultMix === undefined) throw invalid({ in: where, field: fields.scenario, rule: MIX_WITHOUT_WEIGHTS.rule, message: MIX_WITHOUT_WEIGHTS.message });
    return defaultMix;
  }
  const field = fields.mix;
  if (scenario !== undefined && scenario !== 'mix') {
    throw invalid({ in: where, field, rule: 'mix_with_scenario', message: `is given only with scenario mix or without a scenario (the scenario is ${scenario})` });
  }
  return mixOf(mixText, field, where);
}

const FIELDS = { body: { scenario: '/scenario', mix: '/mix' }, headers: { scenario: '/x-sim-scenario', mix: '/x-sim-mix' } } as const;

/** The scenario of a dialect that takes it as headers: `X-Sim-Scenario`, `X-Sim-Mix`. */
export function scenarioFromHeaders(headers: { 'x-sim-scenario'?: Scenario | undefined; 'x-sim-mix'?: string | undefined }, defaultMix: Mix | undefined): ScenarioRequest | undefined {
  return requestedScenario(headers['x-sim-scenario'], headers['x-sim-mix'], 'headers', defaultMix);
}

/** Parsed mixes by their text: a load test sends the same few mixes again and again. */
const parsed = new Map<string, Mix>();
const MAX_PARSED = 256;

function mixOf(text: string, field: string, where: 'body' | 'headers'): Mix {
  const known = parsed.get(text);
  if (known !== undefined) return known;
  const result = parseMix(text);
  if (!result.ok) throw invalid({ in: where, field, rule: 'mix', message: result.message });
  if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value as string);
  parsed.set(text, result.mix);
  return result.mix;
}

/** VALIDATION_FAILED worded as the schema's own issues are: `headers /x-sim-mix: …`. */
function invalid(issue: ValidationIssue): DomainError {
  return new DomainError('VALIDATION_FAILED', `${issue.in} ${issue.field}: ${issue.message}`, [issue]);
}

/**
 * The route options of a route that takes a fault rule's `outcome` (it creates or decides a
 * payment and hands `request.faultPlan.outcome` to the core's decision): outcome rules match
 * these routes only (plugins/app/fault-hooks.ts). Native intents, /api/v2 payments, the bookings API's
 * /payments/execute, FluxPay's confirm, subscribe and change-plan; README lists them. They are
 * core/faults/outcome-routes.ts's OUTCOME_ROUTES, which validation matches outcome rules against:
 * the faults plugin refuses to start when the two differ.
 */
export const TAKES_OUTCOME = { config: { faultOutcome: true } } as const;

/**
 * The route config of the simulator's own routes (the rules API, the namespaces, the run report,
 * the webhook administration): fault rules never shape them (plugins/app/fault-hooks.ts), so a rule on
 * `/v1/sim/**` cannot lock its own removal out nor hide the log; README lists them.
 */
export const NO_FAULTS = { faults: false } as const;
