import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH, renderOpenApiYaml } from '../../scripts/openapi.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

interface Operation {
  requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
  responses?: Record<string, unknown>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

describe('OpenAPI document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => {
    await t.app.close();
  });

  it('the committed openapi/payment-sim.yaml matches the routes', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '');
    const fresh = await renderOpenApiYaml();
    // Compared as a boolean first so a stale file fails with the fix, not a 1,700-line diff.
    expect(committed === fresh, 'openapi/payment-sim.yaml is stale: run make openapi').toBe(true);
  });

  it('GET /openapi.json serves an OpenAPI 3.1 document with every route', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.json<Document>();
    expect(doc.openapi).toBe('3.1.0');

    const { paths } = doc;
    expect(paths['/v1/sim/intent']?.post).toBeDefined();
    expect(paths['/v1/sim/intents/{id}']?.get).toBeDefined();
    expect(paths['/v1/sim/intents']?.get).toBeDefined();
    expect(paths['/v1/sim/intents/{id}/cancel']?.post).toBeDefined();
    expect(paths['/v1/sim/intents/{id}/refund']?.post).toBeDefined();
    expect(paths['/healthz']?.get).toBeDefined();
    expect(paths['/readyz']?.get).toBeDefined();
    expect(paths['/metrics']?.get).toBeDefined();
    // Hidden routes stay out of the document.
    expect(paths['/openapi.json']).toBeUndefined();
    expect(paths['/']).toBeUndefined();

    const create = paths['/v1/sim/intent']!.post!;
    const body = create.requestBody?.content?.['application/json']?.schema;
    expect(body).toMatchObject({ type: 'object', additionalProperties: false });
    expect(Object.keys(create.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '422']));
  });

  it('GET / serves Swagger UI, and its initializer loads the generated document', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/swagger/i);
    const init = await t.app.inject({ method: 'GET', url: '/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    const spec = await t.app.inject({ method: 'GET', url: '/json' });
    expect(spec.json().paths['/v1/sim/intent']).toBeDefined();
  });

  it('GET /docs redirects to /', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/');
  });
});
