import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { describeErrors, PATTERN_DESCRIPTION } from './validation.ts';

/**
 * Bodies are validated strictly (no type coercion: `"amount": "100"` is a 400), while query
 * strings, params and headers, which are always strings on the wire, are coerced. Both know the
 * service's own formats and the `x-pattern-description` annotation, and say a broken rule in
 * words (`must be one of approve, fail, delay, random, mix`, `must be an absolute http(s) URL`; see
 * `describeErrors`), which needs the schema, so each compiled validator is wrapped with it.
 */
export function useValidators(app: FastifyInstance): void {
  const shared = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strict = withKeywords(new Ajv({ ...shared, coerceTypes: false }));
  const coercing = withKeywords(new Ajv({ ...shared, coerceTypes: 'array' }));
  app.setValidatorCompiler(({ schema, httpPart }) => described((httpPart === 'body' ? strict : coercing).compile(schema), schema));
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
  // An annotation (no validation of its own): a string, so a mistyped one fails at start.
  ajv.addKeyword({ keyword: PATTERN_DESCRIPTION, schemaType: 'string' });
  return ajv;
}

/** What the webhook dispatcher can send to: the WHATWG URL parser accepts it, with an http or https scheme and a host. */
export function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\//i.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
