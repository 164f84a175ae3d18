import type { ErrorObject } from 'ajv';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorShape } from '../../http/error-handler.ts';
import type { Problem } from '../../http/problem.ts';
import { V2ErrorBody, V2ValidationErrorBody } from './schemas.ts';

/**
 * The Payment Server v3 API's error shape: FastAPI's, so the clients of source document 001
 * parse paysim's errors as they parsed the original's.
 * - Bad input is `422 {"detail": [{"type", "loc", "msg", "input", "ctx"?}]}`, one item per
 *   problem, with pydantic's types and messages (`missing` "Field required", `int_type`,
 *   `greater_than_equal`, `literal_error`, `url_scheme`, `json_invalid`, `extra_forbidden`, …).
 * - Everything else is `{"detail": "<message>"}`: Starlette's `Not Found` and `Method Not
 *   Allowed` for unknown routes and methods, the route's own words otherwise
 *   (`Payment not found`, `Not authenticated`).
 * @see issue 10 "Errors", https://fastapi.tiangolo.com/tutorial/handling-errors/
 * @see https://docs.pydantic.dev/latest/errors/validation_errors/
 */

export const V2_PREFIX = '/api/v2';

/** One item of FastAPI's validation `detail`. */
export interface FastApiIssue {
  type: string;
  loc: Array<string | number>;
  msg: string;
  input: unknown;
  ctx?: Record<string, unknown>;
}

export const DETAILS = {
  notFound: 'Payment not found',
  unauthenticated: 'Not authenticated',
  routeNotFound: 'Not Found',
  methodNotAllowed: 'Method Not Allowed',
} as const;

/** Starlette's words for the errors it answers itself (an unknown route, another method). */
const STARLETTE: Readonly<Record<string, string>> = { NOT_FOUND: DETAILS.routeNotFound, METHOD_NOT_ALLOWED: DETAILS.methodNotAllowed };

export const v2Errors: ErrorShape = {
  schema: V2ErrorBody,
  validationSchema: V2ValidationErrorBody,
  name: 'payment-server-v2',
  prefixes: [V2_PREFIX],
  statusOf: {
    VALIDATION_FAILED: 422,
    IDEMPOTENCY_KEY_IN_USE: 409,
    IDEMPOTENCY_KEY_MISMATCH: 422,
  },
  // FastAPI answers a body it cannot read or validate with 422, never 400.
  statusFor: (problem) => (problem.code === 'VALIDATION_FAILED' ? 422 : problem.status),
  render(reply, problem) {
    return reply.send({ detail: detailOf(reply, problem) });
  },
};

function detailOf(reply: FastifyReply, problem: Problem): string | FastApiIssue[] {
  if (problem.code === 'VALIDATION_FAILED') return validationDetail(reply.request, problem);
  if (problem.code === 'IDEMPOTENCY_KEY_MISMATCH') {
    // Every 422 of this API is a list, as FastAPI's are: the key is the input that does not fit.
    const key = reply.request.headers['idempotency-key'];
    return [{ type: 'idempotency_key_mismatch', loc: ['header', 'idempotency-key'], msg: problem.message, input: typeof key === 'string' ? key : null }];
  }
  return STARLETTE[problem.code] ?? problem.message;
}

/** A problem that did not come from the route's schema (the schema's own errors are turned into items by `fastApiIssues`). */
function validationDetail(request: FastifyRequest, problem: Problem): FastApiIssue[] {
  const broken = problem.malformedJson;
  if (broken !== undefined) return [{ type: 'json_invalid', loc: ['body', broken.position], msg: 'JSON decode error', input: {}, ctx: { error: broken.reason } }];
  const details = problem.details ?? [];
  if (details.length === 0) return [{ type: 'value_error', loc: ['body'], msg: problem.message, input: null }];
  return details.map((d) => {
    const path = segments(d.field);
    return { type: d.rule, loc: [locationOf(d.in ?? 'body'), ...path], msg: d.message, input: inputOf(request, d.in ?? 'body', path) };
  });
}

/** What the request sent at `path` of `where` (as pydantic's `input`); null when it sent nothing there. */
function inputOf(request: FastifyRequest, where: string, path: readonly string[]): unknown {
  const value =
    where === 'headers'
      ? request.headers[path[0]?.toLowerCase() ?? '']
      : valueAt(where === 'querystring' ? request.query : where === 'params' ? request.params : request.body, path);
  return value ?? null;
}

/** Sends FastAPI's 422 for the items of a failed validation. */
export function sendValidation(reply: FastifyReply, issues: FastApiIssue[]): FastifyReply {
  return reply.code(422).type('application/json; charset=utf-8').send({ detail: issues });
}

/** Fastify's validation context → FastAPI's first `loc` element. */
export function locationOf(context: string): string {
  switch (context) {
    case 'querystring':
      return 'query';
    case 'headers':
      return 'header';
    case 'params':
      return 'path';
    default:
      return context;
  }
}

/** A JSON pointer (`/amount`, `/`) → `loc` segments. */
function segments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .filter((s) => s !== '')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(data: unknown, path: readonly string[]): unknown {
  let node = data;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/** Literals as Python writes them in pydantic's messages: `'v2'`, `'a', 'b' or 'c'`. */
function pythonChoices(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v)));
  return shown.length <= 1 ? (shown[0] ?? '') : `${shown.slice(0, -1).join(', ')} or ${shown.at(-1) as string}`;
}

/** Fields whose value is a URL (pydantic's HttpUrl), for its error types. */
const URL_FIELDS: ReadonlySet<string> = new Set(['callback_url']);

function urlIssue(value: unknown): Pick<FastApiIssue, 'type' | 'msg' | 'ctx'> {
  const text = typeof value === 'string' ? value : '';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1];
  if (scheme !== undefined && !/^https?$/i.test(scheme)) return { type: 'url_scheme', msg: "URL scheme should be 'http' or 'https'", ctx: { expected_schemes: "'http' or 'https'" } };
  const error = scheme === undefined ? 'relative URL without a base' : /^https?:\/\/(?:[/?#]|$)/i.test(text) ? 'empty host' : 'invalid URL';
  return { type: 'url_parsing', msg: `Input should be a valid URL, ${error}`, ctx: { error } };
}

/** Keywords that say what a value must be, over its type: pydantic reports a literal's error, not the type's. */
const PREFERRED = new Set(['const', 'enum']);

/**
 * Fastify's (Ajv's) errors of one failed validation as FastAPI's items, in pydantic's words:
 * `where` is Fastify's validation context (`body`, `querystring`, …), `data` what was validated.
 * A value has one item (pydantic reports one problem per value): the literal's error wins over
 * the type's.
 */
export function fastApiIssues(errors: readonly ErrorObject[], where: string, data: unknown): FastApiIssue[] {
  const root = locationOf(where);
  const byLoc = new Map<string, FastApiIssue & { keyword: string }>();
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'propertyNames') continue;
    const params = e.params as Record<string, unknown>;
    const path = segments(e.instancePath);
    const value = valueAt(data, path);
    const field = path.at(-1) ?? '';
    let issue: FastApiIssue;
    switch (e.keyword) {
      case 'required':
        issue = { type: 'missing', loc: [root, ...path, String(params.missingProperty)], msg: 'Field required', input: value };
        break;
      case 'additionalProperties': {
        const name = String(params.additionalProperty);
        issue = { type: 'extra_forbidden', loc: [root, ...path, name], msg: 'Extra inputs are not permitted', input: valueAt(value, [name]) };
        break;
      }
      case 'type':
        issue = typeIssue(String(params.type), value, root, path);
        break;
      case 'minimum':
        issue = { type: 'greater_than_equal', loc: [root, ...path], msg: `Input should be greater than or equal to ${String(params.limit)}`, input: value, ctx: { ge: params.limit } };
        break;
      case 'maximum':
        issue = { type: 'less_than_equal', loc: [root, ...path], msg: `Input should be less than or equal to ${String(params.limit)}`, input: value, ctx: { le: params.limit } };
        break;
      case 'minLength': {
        const n = Number(params.limit);
        issue = { type: 'string_too_short', loc: [root, ...path], msg: `String should have at least ${n} character${n === 1 ? '' : 's'}`, input: value, ctx: { min_length: n } };
        break;
      }
      case 'maxLength': {
        const n = Number(params.limit);
        issue = URL_FIELDS.has(field)
          ? { type: 'url_too_long', loc: [root, ...path], msg: `URL should have at most ${n} characters`, input: value, ctx: { max_length: n } }
          : { type: 'string_too_long', loc: [root, ...path], msg: `String should have at most ${n} characters`, input: value, ctx: { max_length: n } };
        break;
      }
      case 'pattern':
        issue = { type: 'string_pattern_mismatch', loc: [root, ...path], msg: `String should match pattern '${String(params.pattern)}'`, input: value, ctx: { pattern: params.pattern } };
        break;
      case 'format':
        issue = { loc: [root, ...path], input: value, ...urlIssue(value) };
        break;
      case 'const': {
        const expected = pythonChoices([params.allowedValue]);
        issue = { type: 'literal_error', loc: [root, ...path], msg: `Input should be ${expected}`, input: value, ctx: { expected } };
        break;
      }
      case 'enum': {
        const expected = pythonChoices(params.allowedValues as unknown[]);
        issue = { type: 'literal_error', loc: [root, ...path], msg: `Input should be ${expected}`, input: value, ctx: { expected } };
        break;
      }
      default:
        issue = { type: 'value_error', loc: [root, ...path], msg: e.message ?? 'Value error', input: value };
    }
    const key = JSON.stringify(issue.loc);
    const held = byLoc.get(key);
    if (held === undefined || (PREFERRED.has(e.keyword) && !PREFERRED.has(held.keyword))) byLoc.set(key, { ...issue, keyword: e.keyword });
  }
  return [...byLoc.values()].map(({ keyword: _keyword, ...issue }) => issue);
}

function typeIssue(expected: string, value: unknown, root: string, path: string[]): FastApiIssue {
  const loc = [root, ...path];
  if (path.length === 0 && root === 'body') {
    // No body at all, or a body that is not a JSON object.
    if (value === undefined || value === null) return { type: 'missing', loc, msg: 'Field required', input: null };
    return { type: 'model_attributes_type', loc, msg: 'Input should be a valid dictionary or object to extract fields from', input: value };
  }
  switch (expected) {
    case 'integer':
      // Query strings and headers are text: pydantic tries to parse them.
      if (root !== 'body') return { type: 'int_parsing', loc, msg: 'Input should be a valid integer, unable to parse string as an integer', input: value };
      if (typeof value === 'number') return { type: 'int_from_float', loc, msg: 'Input should be a valid integer, got a number with a fractional part', input: value };
      return { type: 'int_type', loc, msg: 'Input should be a valid integer', input: value };
    case 'string':
      return { type: 'string_type', loc, msg: 'Input should be a valid string', input: value };
    case 'object':
      return { type: 'dict_type', loc, msg: 'Input should be a valid dictionary', input: value };
    default:
      return { type: `${expected}_type`, loc, msg: `Input should be a valid ${expected}`, input: value };
  }
}
