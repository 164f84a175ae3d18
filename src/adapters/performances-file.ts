import { readFileSync } from 'node:fs';
import { parsePerformances, type Performance } from '../core/bookings/performances.ts';
import { jsonProblem } from './yaml-error.ts';

/**
 * Reads and validates `PERFORMANCES_FILE`. Synchronous: it runs once at start, before the server
 * listens. Every failure is one line naming the variable, the path and the rule.
 */
export function loadPerformancesFile(path: string): Performance[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`PERFORMANCES_FILE: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`PERFORMANCES_FILE: ${path} is not valid JSON: ${jsonProblem(text)}`, { cause: error });
  }
  try {
    return parsePerformances(json);
  } catch (error) {
    throw new Error(`PERFORMANCES_FILE: ${path}: ${(error as Error).message}`, { cause: error });
  }
}
