import { describe, expect, it } from 'vitest';
import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { ruleWords } from '../../src/core/rule-words.ts';

/** The first error TypeBox reports for `value` against `schema`, as ruleWords sees it. */
function wordsFor(schema: TSchema, value: unknown): string | undefined {
  const [first] = Value.Errors(schema, value);
  if (first === undefined) throw new Error('the value was valid');
  return ruleWords(first);
}

describe('ruleWords', () => {
  it.each([
    ['a whole number', Type.Integer(), 1.5, 'must be a whole number'],
    ['a number', Type.Number(), 'x', 'must be a number'],
    ['a string', Type.String(), 1, 'must be a string'],
    ['a boolean', Type.Boolean(), 'yes', 'must be true or false'],
    ['a list', Type.Array(Type.String()), {}, 'must be a list (a JSON array)'],
    ['an object', Type.Object({}), [], 'must be an object'],
    ['a minimum', Type.Integer({ minimum: 1 }), 0, 'must be at least 1'],
    ['a maximum', Type.Number({ maximum: 0.5 }), 1, 'must be at most 0.5'],
    ['an exclusive minimum', Type.Number({ exclusiveMinimum: 0 }), 0, 'must be above 0'],
    ['an exclusive maximum', Type.Number({ exclusiveMaximum: 10 }), 10, 'must be below 10'],
    ['a non-empty string', Type.String({ minLength: 1 }), '', 'must not be empty'],
    ['a minimum length', Type.String({ minLength: 8 }), 'short', 'must be at least 8 characters long'],
    ['a maximum length', Type.String({ maxLength: 3 }), 'long', 'must be at most 3 characters long'],
    ['a non-empty list', Type.Array(Type.String(), { minItems: 1 }), [], 'must not be empty'],
    ['a minimum of items', Type.Array(Type.String(), { minItems: 2 }), ['a'], 'must hold at least 2 items'],
    ['a maximum of items', Type.Array(Type.String(), { maxItems: 1 }), ['a', 'b'], 'must hold at most 1 item'],
    ['a maximum length of one', Type.String({ maxLength: 1 }), 'ab', 'must be at most 1 character long'],
  ])('says %s in words', (_name, schema, value, words) => {
    expect(wordsFor(schema, value)).toBe(words);
  });

  it('says an ISO 8601 date-time in words', () => {
    expect(wordsFor(Type.String({ format: 'date-time' }), 'tomorrow')).toBe('must be an ISO 8601 date-time with its offset, such as 2026-03-01T19:00:00+09:00');
  });

  it('leaves the rules it has no words for to the validator', () => {
    expect(wordsFor(Type.String({ pattern: '^a$' }), 'b')).toBeUndefined();
    expect(wordsFor(Type.Null(), 1)).toBeUndefined();
  });
});
