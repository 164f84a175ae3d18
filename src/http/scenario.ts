import { DomainError } from '../core/errors.ts';
import { parseMix, type Mix } from '../core/faults/mix.ts';
import type { Scenario, ScenarioRequest } from '../core/scenario.ts';
import type { ValidationIssue } from './validation.ts';

/**
 * What a request asks the scenario engine for, from its scenario and its mix as sent (the native
 * API's `scenario` and `mix` fields; other dialects' `X-Sim-Scenario` and `X-Sim-Mix` headers):
 * the weights when a mix is sent (with scenario `mix` or none), else the scenario. A mix beside
 * another scenario, or one that does not parse, is VALIDATION_FAILED on `field`.
 * @see issue 15 "Load-test controls" (weighted outcome mix)
 */
export function requestedScenario(scenario: Scenario | undefined, mixText: string | undefined, field: string, where: 'body' | 'headers'): ScenarioRequest | undefined {
  if (mixText === undefined) return scenario;
  if (scenario !== undefined && scenario !== 'mix') {
    throw invalid({ in: where, field, rule: 'mix_with_scenario', message: `is given only with scenario mix or without a scenario (the scenario is ${scenario})` });
  }
  return mixOf(mixText, field, where);
}

/** The scenario of a dialect that takes it as headers: `X-Sim-Scenario`, `X-Sim-Mix`. */
export function scenarioFromHeaders(headers: { 'x-sim-scenario'?: Scenario | undefined; 'x-sim-mix'?: string | undefined }): ScenarioRequest | undefined {
  return requestedScenario(headers['x-sim-scenario'], headers['x-sim-mix'], '/x-sim-mix', 'headers');
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
