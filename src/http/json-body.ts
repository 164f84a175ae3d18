import type { FastifyInstance } from 'fastify';
import secureJson from 'secure-json-parse';

/**
 * The one body parser: JSON only (anything else is 415 before a route runs). An empty body is
 * no body (`undefined`), so a bodyless POST sent with `content-type: application/json` works;
 * the route's schema decides whether a body was required. Malformed JSON is a 400 that says
 * where it broke. `__proto__` and `constructor.prototype` keys are refused, as Fastify's own
 * parser does (secure-json-parse).
 */
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

export function useJsonBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0 || (text.length < 16 && text.trim() === '')) return done(null, undefined);
    try {
      done(null, secureJson.parse(text, undefined, PARSE_OPTIONS));
    } catch (error) {
      const problem = error instanceof Error ? error : new Error(String(error));
      const malformed = new SyntaxError(problem.message) as SyntaxError & { statusCode: number };
      malformed.statusCode = 400;
      done(malformed, undefined);
    }
  });
}
