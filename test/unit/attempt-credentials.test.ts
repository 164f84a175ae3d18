import { describe, expect, it } from 'vitest';
import { withoutCredentials } from '../../src/webhooks/attempt.ts';

/** A webhook URL's credentials: sent as Authorization: Basic, never in the URL or a trace (src/webhooks/attempt.ts). */
describe('withoutCredentials', () => {
  it('takes user and password out of the URL into Authorization: Basic (percent-decoded), and redacts them for the span', () => {
    expect(withoutCredentials('http://ops:s3cr%40t%3Apw@127.0.0.1:4000/auth?token=abc#x')).toEqual({
      url: 'http://127.0.0.1:4000/auth?token=abc#x',
      redacted: 'http://REDACTED:REDACTED@127.0.0.1:4000/auth?token=abc#x',
      authorization: `Basic ${Buffer.from('ops:s3cr@t:pw').toString('base64')}`,
    });
    // A user without a password, as browsers and curl send it.
    expect(withoutCredentials('https://token@hooks.test/a').authorization).toBe(`Basic ${Buffer.from('token:').toString('base64')}`);
  });

  it('credentials that are no valid percent-encoding (%zz, a lone %) are sent as written, never thrown on (before, the delivery stayed pending forever: a reviewer’s find)', () => {
    expect(withoutCredentials('http://a%zz:p%@127.0.0.1:4000/bad')).toEqual({
      url: 'http://127.0.0.1:4000/bad',
      redacted: 'http://REDACTED:REDACTED@127.0.0.1:4000/bad',
      authorization: `Basic ${Buffer.from('a%zz:p%').toString('base64')}`,
    });
  });

  it('a URL without credentials is returned as it is, an @ in its path or query included', () => {
    for (const url of ['http://127.0.0.1:4000/hooks', 'http://127.0.0.1:4000/a@b?to=x@y.test']) {
      expect(withoutCredentials(url)).toEqual({ url, redacted: url });
    }
  });
});
