import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validationIssues } from '../../src/http/validation.ts';
import { useValidators } from '../../src/http/validators.ts';

/**
 * The validators say each broken rule in words (http/validation.ts `describeErrors`): enums and
 * TypeBox unions of literals name their values, a pattern says its `x-pattern-description`, a
 * format its words. A bare Fastify with the service's validators and a route per kind of rule.
 */

const Schema = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('fast'), Type.Literal('slow')])),
    level: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2), Type.Null()])),
    color: Type.Optional(Type.Enum(['red', 'green'])),
    only: Type.Optional(Type.Literal('this')),
    code: Type.Optional(Type.String({ pattern: '^[a-z]{2}$', 'x-pattern-description': 'two lower-case letters' })),
    bare: Type.Optional(Type.String({ pattern: '^x+$' })),
    when: Type.Optional(Type.String({ format: 'date-time' })),
    items: Type.Optional(Type.Array(Type.Object({ mode: Type.Union([Type.Literal('a'), Type.Literal('b')]) }, { additionalProperties: false }))),
    either: Type.Optional(Type.Union([Type.String(), Type.Integer()])),
    tags: Type.Optional(Type.Record(Type.String(), Type.String(), { propertyNames: { pattern: '^[a-z]+$', 'x-pattern-description': 'lower-case letters' } })),
  },
  { additionalProperties: false },
);

let app: FastifyInstance;
beforeAll(async () => {
  app = Fastify();
  useValidators(app);
  app.setErrorHandler((error: FastifyError, _request, reply) => reply.code(400).send(validationIssues(error)));
  app.post('/body', { schema: { body: Schema } }, async () => ({ ok: true }));
  app.get('/query', { schema: { querystring: Type.Object({ mode: Type.Optional(Type.Union([Type.Literal('fast'), Type.Literal('slow')])), n: Type.Optional(Type.Integer()) }) } }, async () => ({ ok: true }));
  await app.ready();
});
afterAll(() => app.close());

async function issues(payload: Record<string, unknown>): Promise<unknown> {
  const res = await app.inject({ method: 'POST', url: '/body', payload });
  expect(res.statusCode).toBe(400);
  return res.json();
}

describe('rules in words', () => {
  it.each([
    ['a union of string literals: one issue, rule enum, the values named', { mode: 'medium' }, [{ in: 'body', field: '/mode', rule: 'enum', message: 'must be one of fast, slow' }]],
    ['a union of literals and null, given another type', { level: 'high' }, [{ in: 'body', field: '/level', rule: 'enum', message: 'must be one of 1, 2, null' }]],
    ['an enum', { color: 'blue' }, [{ in: 'body', field: '/color', rule: 'enum', message: 'must be one of red, green' }]],
    ['a single literal (const)', { only: 'that' }, [{ in: 'body', field: '/only', rule: 'const', message: 'must be this' }]],
    ['a pattern with x-pattern-description', { code: 'ABC' }, [{ in: 'body', field: '/code', rule: 'pattern', message: 'must be two lower-case letters' }]],
    ['a pattern without one keeps Ajv’s message', { bare: 'y' }, [{ in: 'body', field: '/bare', rule: 'pattern', message: 'must match pattern "^x+$"' }]],
    ['a format', { when: 'tomorrow' }, [{ in: 'body', field: '/when', rule: 'format', message: 'must be an ISO 8601 date-time such as 2026-11-20T10:00:00.000Z' }]],
    ['a union of literals inside an array', { items: [{ mode: 'a' }, { mode: 'c' }] }, [{ in: 'body', field: '/items/1/mode', rule: 'enum', message: 'must be one of a, b' }]],
    [
      'a union that is not of literals keeps its branches',
      { either: 1.5 },
      [
        { in: 'body', field: '/either', rule: 'type', message: 'must be string' },
        { in: 'body', field: '/either', rule: 'type', message: 'must be integer' },
        { in: 'body', field: '/either', rule: 'anyOf', message: 'must match a schema in anyOf' },
      ],
    ],
    ['a key pattern, pointed at the key', { tags: { Bad: 'x' } }, [{ in: 'body', field: '/tags/Bad', rule: 'pattern', message: 'key must be lower-case letters' }]],
  ])('%s', async (_name, payload, expected) => {
    expect(await issues(payload)).toEqual(expected);
  });

  it('several broken rules: one issue each, in order', async () => {
    expect(await issues({ mode: 'x', color: 'y', code: '1' })).toEqual([
      { in: 'body', field: '/mode', rule: 'enum', message: 'must be one of fast, slow' },
      { in: 'body', field: '/color', rule: 'enum', message: 'must be one of red, green' },
      { in: 'body', field: '/code', rule: 'pattern', message: 'must be two lower-case letters' },
    ]);
  });

  it('the query string (coerced) too; a valid request still passes', async () => {
    const bad = await app.inject({ url: '/query?mode=medium' });
    expect(bad.json()).toEqual([{ in: 'querystring', field: '/mode', rule: 'enum', message: 'must be one of fast, slow' }]);
    expect((await app.inject({ url: '/query?mode=fast&n=3' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/body', payload: { mode: 'slow', level: null, code: 'ab', items: [{ mode: 'b' }] } })).statusCode).toBe(200);
  });
});
