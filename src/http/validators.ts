import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

/**
 * Bodies are validated strictly (no type coercion: `"amount": "100"` is a 400), while query
 * strings, params and headers, which are always strings on the wire, are coerced. Both know the
 * service's own formats.
 */
export function useValidators(app: FastifyInstance): void {
  const shared = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;
  const strict = withFormats(new Ajv({ ...shared, coerceTypes: false }));
  const coercing = withFormats(new Ajv({ ...shared, coerceTypes: 'array' }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
}

function withFormats(ajv: Ajv): Ajv {
  addFormats.default(ajv);
  ajv.addFormat('http-url', { type: 'string', validate: isHttpUrl });
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
