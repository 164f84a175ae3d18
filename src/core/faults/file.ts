import { describeIssue } from './checker.ts';
import { RULE_ID_PATTERN } from './model.ts';
import { whyNoRoute, type DialectRoute } from './outcome-routes.ts';
import { parseRule, type ParsedRule } from './validation.ts';

/**
 * A FAULTS_FILE's rules: the document read (its shape, each rule as `parseRule` reads it, no id
 * twice) and, once the routes exist, checked against them; every problem named on one line as the
 * file spells it.
 */

/** Most rules a FAULTS_FILE may hold (the memory store's default bound). */
export const MAX_FILE_RULES = 1_000;

/** Most problems a FAULTS_FILE's one-line error names; it says how many more there are. */
const MAX_FILE_PROBLEMS = 5;

/**
 * Checks a parsed FAULTS_FILE document and reads its rules: `{"rules": [...]}`, or `{"data": [...]}`
 * as GET /v1/sim/rules answers, so a session's rules saved with curl are a FAULTS_FILE as they
 * are (YAML or JSON). Throws an Error whose one-line message names every problem as the file
 * spells it (the first five, then how many more): `rules[2].action.status must be one of 500,
 * 502, 503, 504, 429; rules[4].probability must be a number from 0 to 1`.
 */
export function parseFaultsFile(document: unknown, now: number): ParsedRule[] {
  const shape = 'must be a mapping with `rules`, a list of rules (or `data`, as GET /v1/sim/rules lists them)';
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw new Error(shape);
  const keys = Object.keys(document);
  const extra = keys.find((key) => key !== 'rules' && key !== 'data');
  if (extra !== undefined) throw new Error(`${extra} is not a known field (the file has only \`rules\`, or \`data\` as GET /v1/sim/rules lists them)`);
  if (keys.length === 0) throw new Error(shape);
  if (keys.length > 1) throw new Error('has both `rules` and `data`: give the rules in one of them');
  const key = keys[0] as 'rules' | 'data';
  const rules = (document as Record<string, unknown>)[key];
  if (!Array.isArray(rules)) throw new Error(`${key} must be a list of rules`);
  if (rules.length > MAX_FILE_RULES) throw new Error(`${key} must hold at most ${MAX_FILE_RULES} rules`);
  const problems: string[] = [];
  const seen = new Set<string>();
  const parsedRules = rules.map((json, i) => {
    const parsed = parseRule(json, { now, keepEnded: true });
    if (!parsed.ok) for (const issue of parsed.issues) problems.push(describeIssue({ ...issue, path: [key, i, ...issue.path] }));
    // An id is checked for a repeat whether or not the rest of its rule is valid, so every problem is named at once.
    const id = typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined;
    if (typeof id === 'string' && RULE_ID_PATTERN.test(id)) {
      if (seen.has(id)) problems.push(`${key}[${i}].id ${id} is given twice`);
      seen.add(id);
    }
    return parsed.ok ? parsed.value : undefined;
  });
  if (problems.length > 0) throw new Error(fileProblems(problems));
  return parsedRules as ParsedRule[];
}

/**
 * A FAULTS_FILE's request rules that can match none of `routes` (read before any route existed,
 * checked once they do), named as the file's other problems are (`rules[0] (typo) matches no
 * route …`, the first five, then how many more); undefined when every rule can match one.
 * `document` is the file as `parseFaultsFile` read it into `rules`.
 */
export function fileRulesMatchingNoRoute(document: unknown, rules: readonly ParsedRule[], routes: readonly DialectRoute[]): string | undefined {
  const key = Object.keys((document ?? {}) as object)[0] ?? 'rules';
  const problems = rules.flatMap((rule, i) => {
    const why = rule.input.target === 'request' ? whyNoRoute(rule.input.match, routes) : undefined;
    return why === undefined ? [] : [`${key}[${i}]${rule.id === undefined ? '' : ` (${rule.id})`} matches no route paysim answers, so it would never apply: ${why}`];
  });
  return problems.length === 0 ? undefined : fileProblems(problems);
}

/** A file's problems on one line: the first MAX_FILE_PROBLEMS, then how many more. */
function fileProblems(problems: readonly string[]): string {
  const more = problems.length - MAX_FILE_PROBLEMS;
  return problems.slice(0, MAX_FILE_PROBLEMS).join('; ') + (more > 0 ? ` (and ${more} more)` : '');
}
