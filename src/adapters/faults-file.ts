import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { jsonProblem, yamlProblem } from './yaml-error.ts';
import { parseFaultsFile } from '../core/faults/file.ts';
import type { ParsedRule } from '../core/faults/validation.ts';

/**
 * Reads and checks `FAULTS_FILE`: `{"rules": [...]}` in YAML or JSON (JSON is YAML, but a `.json`
 * file is read with JSON.parse so its errors read as JSON's). Synchronous: it runs once at start,
 * before the server listens. Every failure is one line naming the variable and the problem, e.g.
 * `FAULTS_FILE: rules[2].action.status must be one of 500, 502, 503, 504, 429`.
 * Relative window bounds count from `now` (the start).
 * @see issue 15 "Rules" (loaded at start from FAULTS_FILE)
 */
export function loadFaultsFile(path: string, now: number): ParsedRule[] {
  return readFaultsFile(path, now).rules;
}

/**
 * `loadFaultsFile`'s rules with the file's fingerprint (SHA-256 of its text, 32 hex digits): with
 * a shared store the rules are made once for each content of the file (FaultRuleStore.declare);
 * and the document as read, whose rules each namespace makes anew (`parseFaultsFile` at its
 * creation: relative windows count from it).
 */
export function readFaultsFile(path: string, now: number): { rules: ParsedRule[]; fingerprint: string; document: unknown } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`FAULTS_FILE: cannot read ${path}: ${oneLine(error)}`, { cause: error });
  }
  let document: unknown;
  const json = path.toLowerCase().endsWith('.json');
  try {
    document = json ? JSON.parse(text) : parse(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    throw new Error(`FAULTS_FILE: ${path} is not valid ${json ? 'JSON' : 'YAML'}: ${json ? jsonProblem(text) : yamlProblem(error)}`, { cause: error });
  }
  if (json) {
    const twice = repeatedKey(text);
    if (twice !== undefined) throw new Error(`FAULTS_FILE: ${path} gives a key twice in one object, ${twice}: JSON.parse would keep the last one and drop the other without a word; give it once`);
  }
  try {
    return { rules: parseFaultsFile(document, now), fingerprint: createHash('sha256').update(text).digest('hex').slice(0, 32), document };
  } catch (error) {
    throw new Error(`FAULTS_FILE: ${oneLine(error)}`, { cause: error });
  }
}

/**
 * Where a JSON text gives a key twice in one object (`at line 1, column 29`), read by the YAML
 * parser (JSON is YAML) with unique keys, as a YAML FAULTS_FILE is; undefined when none is. Before
 * 2026-12-05 `{"rules": [...], "rules": []}` started with no rules and no word (a user test).
 */
function repeatedKey(text: string): string | undefined {
  try {
    parse(text, { uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    const e = error as { code?: unknown; linePos?: Array<{ line: number; col: number }> };
    // Only a repeated key: anything else the YAML reader minds in valid JSON is no problem of JSON's.
    if (e.code === 'DUPLICATE_KEY') {
      const at = e.linePos?.[0];
      return at === undefined ? 'somewhere' : `at line ${at.line}, column ${at.col}`;
    }
  }
  return undefined;
}

function oneLine(error: unknown): string {
  return (error as Error).message.replace(/\s*\n\s*/g, ' ').trim();
}
