import type { ErrorObject } from 'ajv';
import type { FastifyError } from 'fastify';
import type { FieldIssue } from '../core/errors.ts';

export interface ValidationIssue extends FieldIssue {
  in: string;
}

/**
 * The schema keyword that says in words what a `pattern` accepts, completing "must be …":
 * `{ pattern: '^pay_[0-9A-HJKMNP-TV-Z]{26}$', 'x-pattern-description': 'pay_ followed by a 26-character ULID' }`
 * makes the message `must be pay_ followed by a 26-character ULID` instead of Ajv's
 * `must match pattern "^pay_[0-9A-HJKMNP-TV-Z]{26}$"`. An `x-` name, so the OpenAPI document may carry it (a
 * specification extension) and Ajv knows it as an annotation (http/validators.ts).
 */
export const PATTERN_DESCRIPTION = 'x-pattern-description';

/** Formats in words, completing "must be …" (the service's own formats are in http/validators.ts). */
export const FORMAT_DESCRIPTIONS: Readonly<Record<string, string>> = {
  'http-url': 'an absolute http(s) URL',
  iso4217: 'an ISO 4217 currency code such as KRW, USD or EUR',
  'date-time': 'an ISO 8601 date-time such as 2026-11-20T10:00:00.000Z',
  date: 'a date such as 2026-11-20',
  uri: 'an absolute URI',
  email: 'an email address',
  uuid: 'a UUID',
};

/**
 * Rewrites Ajv's errors of one validation so their messages say the rule in words:
 * - `enum`: `must be one of approve, fail, delay, random, mix` (Ajv: "must be equal to one of the allowed values");
 * - a union of literals (TypeBox's `Type.Union([Type.Literal(…), …])`, an `anyOf` of `const`s):
 *   one error, rule `enum`, with the same wording, instead of one error per branch and an `anyOf`;
 * - `const`: `must be x`;
 * - `pattern`: `must be <the schema's x-pattern-description>` (Ajv's message, with the regular
 *   expression, when the schema has none);
 * - `format`: `must be <the format in words>` (FORMAT_DESCRIPTIONS).
 * `schema` is the schema the errors came from, to look up what a rule allowed (by `schemaPath`).
 */
export function describeErrors(errors: readonly ErrorObject[], schema: unknown): ErrorObject[] {
  // Union-of-literal `anyOf`s: their path, and the values they allow. Ajv reports an anyOf after its branches.
  const literalUnions = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf') continue;
    const allowed = literalValues(at(schema, e.schemaPath));
    if (allowed !== undefined) literalUnions.set(`${e.instancePath}\u0000${e.schemaPath}`, allowed);
  }
  const described: ErrorObject[] = [];
  for (const e of errors) {
    if (literalUnions.size > 0 && isBranchOf(e, literalUnions)) continue;
    const union = e.keyword === 'anyOf' ? literalUnions.get(`${e.instancePath}\u0000${e.schemaPath}`) : undefined;
    if (union !== undefined) {
      described.push({ ...e, keyword: 'enum', params: { allowedValues: union }, message: oneOf(union) });
      continue;
    }
    const message = wordsFor(e, schema);
    described.push(message === undefined ? e : { ...e, message });
  }
  return described;
}

function wordsFor(e: ErrorObject, schema: unknown): string | undefined {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return oneOf(params.allowedValues as unknown[]);
    case 'const':
      return `must be ${shown(params.allowedValue)}`;
    case 'pattern': {
      const words = (at(schema, parentPath(e.schemaPath)) as Record<string, unknown> | undefined)?.[PATTERN_DESCRIPTION];
      return typeof words === 'string' ? `must be ${words}` : undefined;
    }
    case 'format': {
      const words = FORMAT_DESCRIPTIONS[String(params.format)];
      return words === undefined ? undefined : `must be ${words}`;
    }
    default:
      return undefined;
  }
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? `must be ${shown(values[0])}` : `must be one of ${values.map(shown).join(', ')}`;
}

/** Strings as they are (`approve`), anything else as JSON (`null`, `3`). */
function shown(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** An error reported inside a branch of a union of literals (its `anyOf` error stands for it). */
function isBranchOf(e: ErrorObject, unions: ReadonlyMap<string, unknown[]>): boolean {
  const cut = e.schemaPath.lastIndexOf('/anyOf/');
  if (cut < 0) return false;
  const anyOfPath = e.schemaPath.slice(0, cut + '/anyOf'.length);
  if (unions.has(`${e.instancePath}\u0000${anyOfPath}`)) return true;
  // A branch nested deeper (anyOf/0/…/anyOf/1/const) belongs to the innermost anyOf, checked above; look further out too.
  return e.schemaPath.slice(0, cut).includes('/anyOf/') && isBranchOf({ ...e, schemaPath: e.schemaPath.slice(0, cut) }, unions);
}

/** The values an `anyOf` allows when each branch is a literal (`const`, `enum`, or the null type); undefined otherwise. */
function literalValues(anyOf: unknown): unknown[] | undefined {
  if (!Array.isArray(anyOf) || anyOf.length === 0) return undefined;
  const values: unknown[] = [];
  for (const branch of anyOf as unknown[]) {
    if (typeof branch !== 'object' || branch === null) return undefined;
    const b = branch as Record<string, unknown>;
    if ('const' in b) values.push(b.const);
    else if (Array.isArray(b.enum)) values.push(...(b.enum as unknown[]));
    else if (b.type === 'null') values.push(null);
    else return undefined;
  }
  return values;
}

function parentPath(schemaPath: string): string {
  return schemaPath.slice(0, schemaPath.lastIndexOf('/'));
}

/** The subschema at an Ajv `schemaPath` (`#/properties/currency/pattern`), or undefined when it cannot be followed (a `$ref`). */
function at(schema: unknown, schemaPath: string): unknown {
  if (!schemaPath.startsWith('#')) return undefined;
  let node: unknown = schema;
  for (const raw of schemaPath.slice(1).split('/').slice(1)) {
    if (typeof node !== 'object' || node === null) return undefined;
    const segment = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/**
 * Turns Fastify's Ajv errors into one entry per broken rule: where (`in` body, querystring,
 * params or headers, and a JSON pointer), which rule, and its message (in words, see
 * `describeErrors`, which the validators apply). A rule broken by an object's key
 * (`propertyNames`) points at that key, and Ajv's extra "property name must be valid" for it is
 * dropped: it says nothing the first one does not.
 */
export function validationIssues(error: FastifyError): ValidationIssue[] {
  const where = error.validationContext ?? 'body';
  const issues: ValidationIssue[] = [];
  /** Issues of key rules, waiting for the `propertyNames` error that names their key (Ajv reports it after them). */
  let keyIssues: ValidationIssue[] = [];
  for (const v of error.validation ?? []) {
    const params = v.params as Record<string, unknown>;
    if (v.keyword === 'propertyNames') {
      for (const issue of keyIssues) {
        issue.field = `${v.instancePath}/${String(params.propertyName)}`;
        issue.message = `key ${issue.message}`;
      }
      keyIssues = [];
      continue;
    }
    let field = v.instancePath === '' ? '/' : v.instancePath;
    if (v.keyword === 'required') field = `${v.instancePath}/${String(params.missingProperty)}`;
    if (v.keyword === 'additionalProperties') field = `${v.instancePath}/${String(params.additionalProperty)}`;
    // An empty name's pointer is `/`, as the root's: the message says which it is (`?=1`, `{"": 1}`).
    const unknown = params.additionalProperty === '' ? 'is not a known field (its name is empty)' : 'is not a known field';
    const message = v.keyword === 'additionalProperties' ? unknown : (v.message ?? 'is invalid');
    const issue = { in: where, field, rule: v.keyword, message };
    issues.push(issue);
    if (v.schemaPath.includes('/propertyNames/')) keyIssues.push(issue);
  }
  return issues;
}
