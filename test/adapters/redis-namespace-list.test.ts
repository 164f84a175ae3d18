import { expect, it } from 'vitest';
import { globEscaped, RedisNamespaceList } from '../../src/adapters/redis/namespace-list.ts';
import { withRedisServer } from '../helpers/redis.ts';

/** Two key prefixes on one Redis do not see each other, whatever characters REDIS_KEY_PREFIX holds (a code review found a reset that did). */
withRedisServer('a namespace wipe under key prefixes with glob characters', (server) => {
  it.each([
    ['t[1]:', 't1:'],
    ['p*:', 'pq:'],
    ['a?:', 'ab:'],
    ['b\\x:', 'bx:'],
  ])('under prefix %j it deletes its own keys and leaves prefix %j alone', async (own, other) => {
    const { client } = server();
    await client.set(`${other}ns:x:int:all`, 'other deployment');
    await client.set(`${own}ns:x:int:all`, 'own');
    await client.set(`${own}ns:x:seat:1`, 'own');
    await client.set(`${own}ns:y:int:all`, 'another namespace');
    expect(await new RedisNamespaceList(client, own).wipe('x')).toBe(2);
    expect([await client.get(`${other}ns:x:int:all`), await client.get(`${own}ns:x:int:all`), await client.get(`${own}ns:y:int:all`)]).toEqual(['other deployment', null, 'another namespace']);
  });
});

it('globEscaped escapes exactly the glob characters', () => {
  expect(globEscaped('a*b?c[d]e\\f.g-h_i:')).toBe('a\\*b\\?c\\[d\\]e\\\\f.g-h_i:');
});
