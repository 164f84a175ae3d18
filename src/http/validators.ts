import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { describeErrors, PATTERN_DESCRIPTION } from './validation.ts';
import { isCurrency } from '../core/currency.ts';

/**
 * Bodies are validated strictly (no type coercion: `"amount": "100"` is a 400), while query
 * strings, params and headers, which are always strings on the wire, are coerced. Both know the
 * service's own formats and the `x-pattern-description` annotation, and say a broken rule in
 * words (`must be one of approve, fail, delay, random, mix`, `must be an absolute http(s) URL`; see
 * `describeErrors`), which needs the schema, so each compiled validator is wrapped with it.
 */
export function useValidators(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorOf);
}

/** The validator of one part of a route (`httpPart`: body, querystring, params, headers), as every route gets it. */
export function validatorOf({ schema, httpPart }: { schema: object; httpPart?: string | undefined }): DescribedValidator {
  return described(compiled(httpPart === 'body' ? STRICT : COERCING, schema), schema);
}

const AJV_OPTIONS = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;

/**
 * The two compilers and what they compiled, shared by every app of the process: the route schemas
 * are the same in every app, so an app built again (a namespace's, X-Sim-Namespace, or a test's)
 * reuses the validators instead of compiling hundreds of schemas again (a large part of the time a
 * build takes, during which the event loop is blocked). Keyed by the schema's JSON, since routes
 * make their schema objects as they register; what a schema compiles to depends on nothing else
 * (no shared schemas are added). Ajv's own cache (by object) is emptied of each schema once
 * compiled. Bounded by the schemas in the code.
 */
interface Compiler {
  ajv: Ajv;
  cache: Map<string, ValidateFunction>;
}
const STRICT: Compiler = { ajv: withKeywords(new Ajv({ ...AJV_OPTIONS, coerceTypes: false })), cache: new Map() };
const COERCING: Compiler = { ajv: withKeywords(new Ajv({ ...AJV_OPTIONS, coerceTypes: 'array' })), cache: new Map() };

function compiled(compiler: Compiler, schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiler.cache.get(key);
  if (validate === undefined) {
    validate = compiler.ajv.compile(schema);
    compiler.ajv.removeSchema(schema);
    compiler.cache.set(key, validate);
  }
  return validate;
}

/** A validator whose `errors` say each rule in words. Fastify reads `errors` after a `false`. */
export interface DescribedValidator {
  (data: unknown, dataCxt?: Parameters<ValidateFunction>[1]): boolean;
  errors: ErrorObject[] | null;
  /** Ajv's, passed on: with it Fastify hands the parent object over, so a coerced root value is written back. */
  schemaEnv: ValidateFunction['schemaEnv'];
}

function described(validate: ValidateFunction, schema: unknown): DescribedValidator {
  const run = ((data, dataCxt) => {
    if (validate(data, dataCxt)) {
      run.errors = null;
      return true;
    }
    run.errors = describeErrors(validate.errors ?? [], schema);
    return false;
  }) as DescribedValidator;
  run.errors = null;
  run.schemaEnv = validate.schemaEnv;
  return run;
}

function withKeywords(ajv: Ajv): Ajv {
  addFormats.default(ajv);
  ajv.addFormat('http-url', { type: 'string', validate: isHttpUrl });
  ajv.addFormat('iso4217', { type: 'string', validate: isCurrency });
  // An annotation (no validation of its own): a string, so a mistyped one fails at start.
  ajv.addKeyword({ keyword: PATTERN_DESCRIPTION, schemaType: 'string' });
  return ajv;
}

/** Unicode's other spaces and line breaks: no-break, Ogham, en to hair, line and paragraph separators, narrow, medium, ideographic, BOM. */
const OTHER_SPACES = /[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;

/**
 * Whether `value` holds a space, a control character (C0, DEL, C1), another Unicode space or a
 * backslash (the URL parser reads it as `/`: `http://h\evil/x` goes to host h).
 */
function hasSpaceOrControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x5c) return true;
  }
  return OTHER_SPACES.test(value);
}

/**
 * What the webhook dispatcher can send to: the WHATWG URL parser accepts it, with an http or https
 * scheme and a host, and it holds no space or control character (the parser would drop a tab, CR or
 * LF and encode a space, so the URL called would not be the one stored and shown: a user test,
 * 2026-12-07).
 */
export function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\//i.test(value) || hasSpaceOrControl(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
