import { describe, expect, it } from 'vitest';
import { caseFoldedOrigin, EMPTY_MATCHER, fieldAt, RuleMatcher, type MatchInput } from '../../src/core/faults/matcher.ts';
import type { FaultRule } from '../../src/core/faults/model.ts';
import { compileRoute, MAX_PATTERN_PATH, requestPath, routeIssue, routeMatches } from '../../src/core/faults/route.ts';
import { ruleFrom, T0 } from './faults-support.ts';

const TIMEOUT = { type: 'timeout', ms: 1_000 };

const request = (overrides: Partial<MatchInput> = {}): MatchInput => ({
  takesOutcome: true,
  dialect: 'native',
  method: 'POST',
  routePattern: '/v1/sim/intents',
  path: '/v1/sim/intents',
  headers: { 'content-type': 'application/json' },
  body: { amount: 50_000, currency: 'KRW', card: { number: '4000000000000002', cvv: '123' }, items: [{ sku: 'A1', amount: 5 }] },
  ...overrides,
});

/** The ids of the rules (each given as its `match`) that `input` matches. */
function matching(matches: Record<string, unknown>[], input: MatchInput, now = T0): string[] {
  const rules = matches.map((match, i) => ruleFrom({ match, action: TIMEOUT }, { id: `r${i}` }));
  return RuleMatcher.compile(rules)
    .matchRequest(input, now)
    .map((c) => c.rule.id);
}

const matches = (match: Record<string, unknown>, input: MatchInput = request()) => matching([match], input).length === 1;

describe('RuleMatcher: requests', () => {
  it('with no rules nothing matches', () => {
    expect(RuleMatcher.compile([]).matchRequest(request(), T0)).toEqual([]);
    expect(EMPTY_MATCHER.matchRequest(request(), T0)).toEqual([]);
  });

  it('a rule without conditions matches every request of every dialect', () => {
    expect(matches({})).toBe(true);
    expect(matches({}, request({ dialect: 'fluxpay', method: 'GET', path: '/api/v1/orders/o_1', body: undefined }))).toBe(true);
  });

  it('dialect and method', () => {
    expect(matches({ dialect: 'native', method: 'POST' })).toBe(true);
    expect(matches({ dialect: 'fluxpay' })).toBe(false);
    expect(matches({ method: 'GET' })).toBe(false);
    expect(matches({ dialect: 'fluxpay', method: 'GET' }, request({ dialect: 'fluxpay', method: 'GET' }))).toBe(true);
    // Exactly, as the README says: HEAD has rules of its own.
    expect(matches({ method: 'GET' }, request({ method: 'HEAD', body: undefined }))).toBe(false);
    expect(matches({ method: 'HEAD' }, request({ method: 'HEAD', body: undefined }))).toBe(true);
  });

  it('matches in rule order, whatever the buckets', () => {
    const rules = [{ method: 'POST' }, {}, { dialect: 'native' }, { dialect: 'fluxpay' }, { dialect: 'native', method: 'POST' }];
    expect(matching(rules, request())).toEqual(['r0', 'r1', 'r2', 'r4']);
    expect(matching(rules, request({ dialect: 'fluxpay' }))).toEqual(['r0', 'r1', 'r3']);
    expect(matching(rules, request({ method: 'GET' }))).toEqual(['r1', 'r2']);
  });

  it('rule order holds across rules found by their literal path and rules checked one by one', () => {
    const rules = [{ route: '/v1/sim/*' }, { route: '/v1/sim/intents' }, {}, { route: '/v1/sim/intents', method: 'POST' }, { route: '/v1/sim/:x' }, { route: '/v1/sim/other' }];
    expect(matching(rules, request())).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(matching([{ route: '/v1/sim/intents' }, { route: '/v1/sim/intents' }], request())).toEqual(['r0', 'r1']);
  });

  describe('route', () => {
    it('a literal route equals the path (query and one trailing slash ignored) or the router pattern', () => {
      expect(matches({ route: '/v1/sim/intents' })).toBe(true);
      expect(matches({ route: '/v1/sim/intents' }, request({ path: '/v1/sim/intents/?limit=5' }))).toBe(true);
      expect(matches({ route: '/v1/sim/intents/' })).toBe(true);
      expect(matches({ route: '/v1/sim/intent' })).toBe(false);
      expect(matches({ route: '/v1/sim/intents/pay_1' }, request({ path: '/v1/sim/intents/pay_1', routePattern: '/v1/sim/intents/:id' }))).toBe(true);
      expect(matches({ route: '/v1/sim/intents/:id' }, request({ path: '/v1/sim/intents/pay_1', routePattern: '/v1/sim/intents/:id' }))).toBe(true);
    });

    it('a route pattern matches one segment per parameter, whatever the parameter is named', () => {
      const order = request({ dialect: 'fluxpay', path: '/api/v1/orders/ord_9', routePattern: '/api/v1/orders/:id' });
      expect(matches({ route: '/api/v1/orders/:orderId' }, order)).toBe(true);
      expect(matches({ route: '/api/v1/orders/:orderId' }, request({ path: '/api/v1/orders/ord_9/cancel' }))).toBe(false);
      expect(matches({ route: '/api/v1/orders/:orderId' }, request({ path: '/api/v1/orders' }))).toBe(false);
      expect(matches({ route: '/api/v1/orders/:orderId/cancel' }, request({ path: '/api/v1/orders/ord_9/cancel' }))).toBe(true);
    });

    it('globs: * within a segment, ** across segments (none included)', () => {
      const at = (path: string) => request({ path, routePattern: undefined });
      expect(matches({ route: '/v1/sim/*' }, at('/v1/sim/intents'))).toBe(true);
      expect(matches({ route: '/v1/sim/*' }, at('/v1/sim/intents/pay_1'))).toBe(false);
      expect(matches({ route: '/v1/sim/int*' }, at('/v1/sim/intents'))).toBe(true);
      expect(matches({ route: '/v1/sim/int*' }, at('/v1/sim/refunds'))).toBe(false);
      expect(matches({ route: '/api/**' }, at('/api'))).toBe(true);
      expect(matches({ route: '/api/**' }, at('/api/v1/orders/ord_1'))).toBe(true);
      expect(matches({ route: '/api/**' }, at('/apiary'))).toBe(false);
      expect(matches({ route: '/api/**/cancel' }, at('/api/v1/orders/ord_1/cancel'))).toBe(true);
      expect(matches({ route: '/api/**/cancel' }, at('/api/v1/orders/ord_1'))).toBe(false);
      // Regular-expression characters in a route are literal.
      expect(matches({ route: '/v1/sim/a.c*' }, at('/v1/sim/abc'))).toBe(false);
      expect(matches({ route: '/v1/sim/a.c*' }, at('/v1/sim/a.cd'))).toBe(true);
    });

    it('compiles literal routes to a comparison and the rest to one anchored expression', () => {
      expect(compileRoute('/v1/sim/intents/')).toEqual({ kind: 'exact', path: '/v1/sim/intents' });
      expect(compileRoute('/api/v1/orders/:orderId')).toMatchObject({ kind: 'regex', source: '^/api/v1/orders/[^/]+$', prefix: '/api/v1/orders/' });
      expect(compileRoute('/**')).toMatchObject({ kind: 'regex', source: '^(?:/[^/]*)*$', prefix: '' });
      expect(compileRoute('/v1/sim/int*/x')).toMatchObject({ prefix: '/v1/sim/int' });
      expect(compileRoute('/api/**/cancel')).toMatchObject({ prefix: '/api' });
      expect(routeMatches(compileRoute('/**'), '/', undefined)).toBe(true);
      expect(requestPath('/a/b/?x=1')).toBe('/a/b');
      expect(requestPath('/?x=1')).toBe('/');
    });

    it('routeIssue says what is wrong with a route', () => {
      expect(routeIssue('/v1/sim/intents')).toBeUndefined();
      expect(routeIssue('/a//b')).toBe('must not have an empty segment ("//")');
      expect(routeIssue('/a/b:c')).toBe('may use ":" only to start a whole parameter segment such as :orderId');
      expect(routeIssue('/a b')).toMatch(/^must be a path starting with "\/"/);
      // Bounds on wildcards keep every expression linear in the path.
      expect(routeIssue('/**/x/**')).toBe('may use ** once');
      expect(routeIssue('/a*b*c')).toBe('may use * once per segment');
      expect(routeIssue('/a*/b*/**')).toBeUndefined();
    });

    it('a path longer than MAX_PATTERN_PATH matches no pattern or glob (only rules without a route)', () => {
      const long = `/v1/sim/${'a'.repeat(MAX_PATTERN_PATH)}`;
      expect(matches({ route: '/v1/sim/*' }, request({ path: long, routePattern: undefined }))).toBe(false);
      expect(matches({}, request({ path: long, routePattern: undefined }))).toBe(true);
      expect(matches({ route: '/v1/sim/*' }, request({ path: long.slice(0, MAX_PATTERN_PATH), routePattern: undefined }))).toBe(true);
    });
  });

  describe('headers', () => {
    it('equal values and prefixes; names are case-insensitive (Node gives them in lower case)', () => {
      const headers = { 'x-tenant': 'acme', 'user-agent': 'k6/0.50 (https://k6.io/)' };
      expect(matches({ headers: { 'X-Tenant': 'acme' } }, request({ headers }))).toBe(true);
      expect(matches({ headers: { 'x-tenant': 'ACME' } }, request({ headers }))).toBe(false);
      expect(matches({ headers: { 'user-agent': { prefix: 'k6/' } } }, request({ headers }))).toBe(true);
      expect(matches({ headers: { 'user-agent': { prefix: 'curl/' } } }, request({ headers }))).toBe(false);
      expect(matches({ headers: { 'x-tenant': 'acme', 'user-agent': { prefix: 'curl/' } } }, request({ headers }))).toBe(false);
    });

    it('a value beyond ASCII matches the UTF-8 bytes clients send, as Node reads them (one latin1 character a byte); before 2026-12-05 it never matched (a user test)', () => {
      const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
      expect(matches({ headers: { 'x-name': '결제' } }, request({ headers: { 'x-name': wire('결제') } }))).toBe(true);
      expect(matches({ headers: { 'x-name': { prefix: '결' } } }, request({ headers: { 'x-name': wire('결제 완료') } }))).toBe(true);
      expect(matches({ headers: { 'x-name': '결제' } }, request({ headers: { 'x-name': wire('취소') } }))).toBe(false);
      expect(matches({ headers: { 'x-name': 'café' } }, request({ headers: { 'x-name': wire('café') } }))).toBe(true);
      // A client sending latin1 (é as the one byte 0xE9, read by Node as 'é') still matches, as before (a review).
      expect(matches({ headers: { 'x-name': 'café' } }, request({ headers: { 'x-name': 'café' } }))).toBe(true);
      expect(matches({ headers: { 'x-name': { prefix: 'caf' } } }, request({ headers: { 'x-name': 'cafe' } }))).toBe(true);
    });

    it('a missing header does not match; a repeated header matches when one of its values does', () => {
      expect(matches({ headers: { 'x-tenant': { prefix: 'a' } } }, request({ headers: {} }))).toBe(false);
      expect(matches({ headers: { 'x-forwarded-for': '10.0.0.2' } }, request({ headers: { 'x-forwarded-for': ['10.0.0.1', '10.0.0.2'] } }))).toBe(true);
      expect(matches({ headers: { 'x-forwarded-for': '10.0.0.3' } }, request({ headers: { 'x-forwarded-for': ['10.0.0.1', '10.0.0.2'] } }))).toBe(false);
    });
  });

  describe('body', () => {
    it('equality is strict: 50000 is not "50000"', () => {
      expect(matches({ body: { amount: 50_000 } })).toBe(true);
      expect(matches({ body: { amount: '50000' } })).toBe(false);
      expect(matches({ body: { currency: 'KRW' } })).toBe(true);
      expect(matches({ body: { currency: 'USD' } })).toBe(false);
    });

    it('numeric ranges: gte and lte inclusive, gt and lt exclusive; a non-number is outside every range', () => {
      expect(matches({ body: { amount: { gte: 50_000 } } })).toBe(true);
      expect(matches({ body: { amount: { gt: 50_000 } } })).toBe(false);
      expect(matches({ body: { amount: { lte: 50_000 } } })).toBe(true);
      expect(matches({ body: { amount: { lt: 50_000 } } })).toBe(false);
      expect(matches({ body: { amount: { gte: 1_000_000 } } })).toBe(false);
      expect(matches({ body: { amount: { gt: 10_000, lt: 60_000 } } })).toBe(true);
      expect(matches({ body: { currency: { gte: 0 } } })).toBe(false);
      expect(matches({ body: { amount: { gte: 0 } } }, request({ body: { amount: '50000' } }))).toBe(false);
    });

    it('prefixes of strings only', () => {
      expect(matches({ body: { 'card.number': { prefix: '4000' } } })).toBe(true);
      expect(matches({ body: { 'card.number': { prefix: '4242' } } })).toBe(false);
      expect(matches({ body: { amount: { prefix: '5' } } })).toBe(false);
    });

    it('nested paths and array indexes; a missing field, a missing body, or a body that is no object does not match', () => {
      expect(matches({ body: { 'items.0.sku': 'A1' } })).toBe(true);
      expect(matches({ body: { 'items.1.sku': 'A1' } })).toBe(false);
      expect(matches({ body: { 'card.cvv': { prefix: '1' }, amount: { gte: 1 } } })).toBe(true);
      expect(matches({ body: { 'card.exp_year': 2030 } })).toBe(false);
      expect(matches({ body: { amount: 1 } }, request({ body: undefined }))).toBe(false);
      expect(matches({ body: { amount: 1 } }, request({ body: 'amount=1' }))).toBe(false);
      // null is a value to compare with, but not a missing field.
      expect(matches({ body: { note: null } }, request({ body: { note: null } }))).toBe(true);
      expect(matches({ body: { note: null } }, request({ body: {} }))).toBe(false);
    });

    it('fieldAt reads own fields only (no prototype)', () => {
      expect(typeof fieldAt({}, ['constructor'])).toBe('symbol');
      expect(typeof fieldAt({ a: [1] }, ['a', 'length'])).toBe('symbol');
      expect(fieldAt({ a: { b: [0, { c: 'x' }] } }, ['a', 'b', '1', 'c'])).toBe('x');
    });
  });

  it('windows: from inclusive, until exclusive', () => {
    const rule = ruleFrom({ window: { from: 1_000, until: 2_000 }, action: TIMEOUT });
    const matcher = RuleMatcher.compile([rule]);
    expect([T0 + 999, T0 + 1_000, T0 + 1_999, T0 + 2_000].map((at) => matcher.matchRequest(request(), at).length)).toEqual([0, 1, 1, 0]);
  });

  it('disabled rules are left out when compiling', () => {
    const rules = [ruleFrom({ enabled: false, action: TIMEOUT }, { id: 'off' }), ruleFrom({ action: TIMEOUT }, { id: 'on' })];
    const matcher = RuleMatcher.compile(rules);
    expect(matcher.requestRules).toBe(1);
    expect(matcher.matchRequest(request(), T0).map((c) => c.rule.id)).toEqual(['on']);
  });

  it('slots: latency, outcome, and response (error, response_lost, timeout)', () => {
    const actions = [
      { type: 'latency', distribution: 'fixed', params: { ms: 5 } },
      { type: 'outcome', approve: true },
      { type: 'error', status: 500 },
      { type: 'response_lost' },
      TIMEOUT,
    ];
    const matcher = RuleMatcher.compile(actions.map((action) => ruleFrom({ action })));
    expect(matcher.matchRequest(request(), T0).map((c) => c.slot)).toEqual(['latency', 'outcome', 'response', 'response', 'response']);
    // A route that takes no outcome (it creates or decides no payment): the outcome rule does not match it.
    expect(matcher.matchRequest(request({ takesOutcome: false }), T0).map((c) => c.slot)).toEqual(['latency', 'response', 'response', 'response']);
    expect(RuleMatcher.compile([ruleFrom({ action: { type: 'outcome', approve: true } })]).matchRequest(request({ method: 'GET', takesOutcome: false }), T0)).toEqual([]);
  });

  it('many dialect and method names (more than it keeps buckets for) still match correctly', () => {
    const matcher = RuleMatcher.compile([ruleFrom({ match: { dialect: 'native' }, action: TIMEOUT }), ruleFrom({ action: TIMEOUT })]);
    for (let i = 0; i < 600; i++) expect(matcher.matchRequest(request({ dialect: `d${i}` }), T0)).toHaveLength(1);
    expect(matcher.matchRequest(request(), T0)).toHaveLength(2);
  });

  it('webhook rules are not request rules', () => {
    const matcher = RuleMatcher.compile([ruleFrom({ action: { type: 'duplicate' } })]);
    expect(matcher.matchRequest(request(), T0)).toEqual([]);
    expect(matcher.webhookRules).toBe(1);
  });
});

describe('RuleMatcher: webhook deliveries', () => {
  const rules: FaultRule[] = [
    ruleFrom({ match: { url_prefix: 'https://a.example/hooks' }, action: { type: 'duplicate' } }, { id: 'a' }),
    ruleFrom({ action: { type: 'drop_attempts', n: 1 } }, { id: 'global' }),
    ruleFrom({ match: { url_prefix: 'https://b.example/' }, window: { until: 1_000 }, action: { type: 'reorder', window_ms: 100 } }, { id: 'b' }),
    ruleFrom({ enabled: false, action: { type: 'duplicate' } }, { id: 'off' }),
    ruleFrom({ action: TIMEOUT }, { id: 'request' }),
  ];
  const matcher = RuleMatcher.compile(rules);
  const ids = (url: string, now = T0) => matcher.matchWebhook(url, now).map((c) => c.rule.id);

  it('by target URL prefix, or every target; in rule order; within the window; enabled only', () => {
    expect(ids('https://a.example/hooks/payments')).toEqual(['a', 'global']);
    expect(ids('https://b.example/x')).toEqual(['global', 'b']);
    expect(ids('https://b.example/x', T0 + 1_000)).toEqual(['global']);
    expect(ids('https://c.example/')).toEqual(['global']);
  });

  it('compares the scheme and host without case, the rest as written', () => {
    const folding = RuleMatcher.compile([
      ruleFrom({ match: { url_prefix: 'HTTP://Hooks.Example:8080/Payments' }, action: { type: 'duplicate' } }, { id: 'upper' }),
      ruleFrom({ match: { url_prefix: 'https://User:Pass@hooks.example/' }, action: { type: 'duplicate' } }, { id: 'userinfo' }),
      ruleFrom({ match: { url_prefix: 'http://HOOKS.EX' }, action: { type: 'duplicate' } }, { id: 'partial-host' }),
    ]);
    const folded = (url: string) => folding.matchWebhook(url, T0).map((c) => c.rule.id);
    expect(folded('http://hooks.example:8080/Payments/1')).toEqual(['upper', 'partial-host']);
    expect(folded('Http://HOOKS.example:8080/Payments?x=1')).toEqual(['upper', 'partial-host']);
    expect(folded('http://hooks.example:8080/payments/1')).toEqual(['partial-host']);
    expect(folded('https://User:Pass@HOOKS.EXAMPLE/x')).toEqual(['userinfo']);
    expect(folded('https://user:pass@hooks.example/x')).toEqual([]);
    // A prefix that ends inside a user name (no @ to tell it from a host) also matches as written (rev74a).
    const inUser = RuleMatcher.compile([ruleFrom({ match: { url_prefix: 'http://Hook' }, action: { type: 'duplicate' } }, { id: 'user' })]);
    expect(inUser.matchWebhook('http://Hook:pw@127.0.0.1:9/ui', T0).map((c) => c.rule.id)).toEqual(['user']);
    expect(inUser.matchWebhook('http://HOOK.example/ui', T0).map((c) => c.rule.id)).toEqual(['user']);
    expect(inUser.matchWebhook('http://hOok:pw@127.0.0.1:9/ui', T0)).toEqual([]);
  });

  it.each([
    ['HTTP://Hooks.Example:80/A?B#C', 'http://hooks.example:80/A?B#C'],
    ['https://U:P@Host.Example', 'https://U:P@host.example'],
    ['https://Host.Example?Q=A@B', 'https://host.example?Q=A@B'],
    ['http://[::FFFF:7F00:1]:9/Hook', 'http://[::ffff:7f00:1]:9/Hook'],
    ['no scheme here', 'no scheme here'],
  ])('caseFoldedOrigin(%s) is %s', (url, folded) => {
    expect(caseFoldedOrigin(url)).toBe(folded);
  });

  it('with no webhook rules nothing matches', () => {
    expect(RuleMatcher.compile([ruleFrom({ action: TIMEOUT })]).matchWebhook('https://a.example/', T0)).toEqual([]);
  });
});
