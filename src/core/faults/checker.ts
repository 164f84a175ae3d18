import type { FieldIssue } from '../errors.ts';

/**
 * How a fault rule's parsing records what is wrong: each problem with its path (`Checker`), said
 * as the API's `details` (JSON pointers) or as a reader of YAML or JSON writes a path
 * (`rules[2].action.status`), and the text checks it needs (a length in code points, an ISO 8601
 * instant that names a real time).
 */

/** Where a problem is: keys and array indexes from the root of what was parsed. */
export type IssuePath = readonly (string | number)[];

export interface RuleIssue {
  path: IssuePath;
  /** A short rule name, as Ajv's keywords: `required`, `type`, `enum`, `minimum`, `additionalProperties`, … */
  rule: string;
  /** Completes "<path> …": `must be one of 500, 502, 503, 504, 429`. */
  message: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; issues: RuleIssue[] };

/** An ISO 8601 date-time with a zone, as bodies carry them. */
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * The instant of an ISO 8601 date-time with a zone (ms since the epoch), or undefined when it is
 * not one or names no real time: February 30th, hour 24, minute 60 (and a zone past ±23:59). V8's
 * `Date.parse` rolls such a date over (`2030-02-30T00:00:00Z` is March 2nd): before 2026-12-05 a
 * window's `until` of February 30th was kept as March 2nd (a user test).
 */
export function isoInstant(text: string): number | undefined {
  const m = ISO_DATE_TIME.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second, zoneHour, zoneMinute] = m.slice(1).map((part) => (part === undefined ? 0 : Number(part))) as number[];
  // setUTCFullYear, not Date.UTC, which takes years 0–99 for 1900–1999.
  const calendar = new Date(0);
  calendar.setUTCFullYear(year as number, (month as number) - 1, day);
  const real = calendar.getUTCMonth() === (month as number) - 1 && calendar.getUTCDate() === day && (hour as number) <= 23 && (minute as number) <= 59 && (second as number) <= 59;
  if (!real || (zoneHour as number) > 23 || (zoneMinute as number) > 59) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? at : undefined;
}

/** Characters (Unicode code points) in `text`, as JSON Schema's maxLength counts them: an emoji is one, not two. */
export function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** Whether `text` has more than `max` characters (code points); cheap when its UTF-16 length is within `max`. */
export function longerThan(text: string, max: number): boolean {
  return text.length > max && characters(text) > max;
}

/** The issues as the API's `details`: JSON pointers under `base` (`/action/status`). */
export function toFieldIssues(issues: readonly RuleIssue[], base = ''): FieldIssue[] {
  return issues.map((issue) => ({ field: `${base}${pointer(issue.path)}`, rule: issue.rule, message: issue.message }));
}

/** `/match/body/card.number` (RFC 6901: `~` and `/` escaped). */
export function pointer(path: IssuePath): string {
  return path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** `rules[2].action.status`, `match.headers["x-tenant"]`: the path as a reader of YAML or JSON writes it. */
export function dotted(path: IssuePath): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out === '' ? '(root)' : out;
}

/** One line: `rules[2].action.status must be one of 500, 502, 503, 504, 429`. */
export function describeIssue(issue: RuleIssue): string {
  return `${dotted(issue.path)} ${issue.message}`;
}

/** Collects issues; each check returns the checked value, or undefined after recording why not. */
export class Checker {
  readonly issues: RuleIssue[] = [];

  issue(path: IssuePath, rule: string, message: string): undefined {
    this.issues.push({ path: [...path], rule, message });
    return undefined;
  }

  result<T = never>(value: T | undefined): ParseResult<T> {
    if (this.issues.length > 0 || value === undefined) return { ok: false, issues: this.issues.length > 0 ? this.issues : [{ path: [], rule: 'type', message: 'is not a valid rule' }] };
    return { ok: true, value };
  }

  object(json: unknown, path: IssuePath, keys?: readonly string[]): Record<string, unknown> | undefined {
    const raw = this.objectOr(json, path, 'must be an object');
    if (raw !== undefined && keys !== undefined) this.onlyKeys(raw, path, keys);
    return raw;
  }

  objectOr(json: unknown, path: IssuePath, message: string): Record<string, unknown> | undefined {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return this.issue(path, 'type', message);
    return json as Record<string, unknown>;
  }

  onlyKeys(raw: Record<string, unknown>, path: IssuePath, keys: readonly string[]): void {
    for (const key of Object.keys(raw)) {
      if (!keys.includes(key)) this.issue([...path, key], 'additionalProperties', `is not a known field (known: ${keys.join(', ')})`);
    }
  }

  required(raw: Record<string, unknown>, key: string, path: IssuePath): boolean {
    if (raw[key] !== undefined) return true;
    this.issue([...path, key], 'required', 'is required');
    return false;
  }

  string(json: unknown, path: IssuePath, options: { max?: number; pattern?: RegExp; words?: string }): string | undefined {
    if (typeof json !== 'string') return this.issue(path, 'type', 'must be a string');
    if (json.length === 0) return this.issue(path, 'minLength', 'must not be empty');
    if (options.max !== undefined && longerThan(json, options.max)) return this.issue(path, 'maxLength', `must be at most ${options.max} characters`);
    if (options.pattern !== undefined && !options.pattern.test(json)) return this.issue(path, 'pattern', `must be ${options.words ?? `of the form ${String(options.pattern)}`}`);
    return json;
  }

  boolean(json: unknown, path: IssuePath): boolean | undefined {
    return typeof json === 'boolean' ? json : this.issue(path, 'type', 'must be true or false');
  }

  number(json: unknown, path: IssuePath, bounds: { min?: number; max?: number }): number | undefined {
    const range = bounds.min !== undefined && bounds.max !== undefined ? ` from ${bounds.min} to ${bounds.max}` : '';
    if (typeof json !== 'number' || !Number.isFinite(json)) return this.issue(path, 'type', `must be a number${range}`);
    if ((bounds.min !== undefined && json < bounds.min) || (bounds.max !== undefined && json > bounds.max)) return this.issue(path, json < (bounds.min ?? -Infinity) ? 'minimum' : 'maximum', `must be a number${range}`);
    return json;
  }

  integer(json: unknown, path: IssuePath, min: number, max: number): number | undefined {
    if (typeof json !== 'number' || !Number.isInteger(json)) return this.issue(path, 'type', `must be an integer from ${min} to ${max}`);
    if (json < min || json > max) return this.issue(path, json < min ? 'minimum' : 'maximum', `must be an integer from ${min} to ${max}`);
    return json;
  }

  oneOf<T extends string | number>(json: unknown, path: IssuePath, allowed: readonly T[]): T | undefined {
    if ((allowed as readonly unknown[]).includes(json)) return json as T;
    return this.issue(path, 'enum', `must be one of ${allowed.join(', ')}`);
  }
}

