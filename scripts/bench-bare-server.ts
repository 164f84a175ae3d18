import Fastify from 'fastify';
import { CreateIntentBody, CreateIntentResponse } from '../src/dialects/native/schemas.ts';
import { PATTERN_DESCRIPTION } from '../src/http/validation.ts';
import { isHttpUrl } from '../src/http/validators.ts';

/**
 * The baseline for `scripts/bench.ts`: a bare Fastify server with the same route, the same body
 * and response schemas (imported, not copied, so they cannot drift) and nothing else: no logger,
 * no plugins, no hooks, no store. Fastify's own Ajv defaults are kept on purpose (they coerce and
 * strip where the service rejects); that is what "plain Fastify" costs, so it is the honest floor.
 * Started by bench.ts with PORT and HOST in the environment; exits on SIGTERM.
 */

// A well-formed pay_<ULID> (26 Crockford characters) so the body is byte-for-byte as long as the
// service's and would pass the response schema's pattern.
const BODY = { payment_intent_id: 'pay_01JBENCH000000000000000000', status: 'PENDING', next: 'poll' } as const;
if (!/^pay_[0-9A-HJKMNP-TV-Z]{26}$/.test(BODY.payment_intent_id)) throw new Error('the constant intent id is not a pay_<ULID>');

// The schema's own format (webhook_url), so the route validates what the service's does, and its
// annotation keyword (no validation of its own), which Ajv's strict mode would otherwise refuse.
const app = Fastify({ logger: false, ajv: { customOptions: { formats: { 'http-url': isHttpUrl }, keywords: [PATTERN_DESCRIPTION] } } });

app.post('/v1/sim/intent', { schema: { body: CreateIntentBody, response: { 200: CreateIntentResponse } } }, async () => BODY);
// Only so bench.ts can wait for both targets the same way.
app.get('/healthz', async () => ({ status: 'ok' }));

process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});

await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? '127.0.0.1' });
