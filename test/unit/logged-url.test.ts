import { describe, expect, it } from 'vitest';
import { loggedUrl } from '../../src/http/logged-url.ts';

/** The request line's URL: the query's secrets are not written. */

describe('loggedUrl', () => {
  it('a URL without a query string, or with nothing secret in it, is returned as it came', () => {
    for (const url of ['/v1/sim/intents', '/v1/sim/intents?status=APPROVED&limit=20', '/api/v1/outbox?status=pending&cursor=evt_01M8', '/x?flag&y=%zz', '/v1/sim/report?since=2026-11-30T09:00:00Z']) {
      expect(loggedUrl(url)).toBe(url);
    }
  });

  it('a value whose name says it is a secret is left out, whatever the case of the name or its encoding', () => {
    expect(loggedUrl('/cb?token=abc123&limit=5')).toBe('/cb?token=[redacted]&limit=5');
    expect(loggedUrl('/cb?Access_Token=abc&_csrf=xyz&Signature=s1')).toBe('/cb?Access_Token=[redacted]&_csrf=[redacted]&Signature=[redacted]');
    expect(loggedUrl('/cb?pass%77ord=hunter2')).toBe('/cb?pass%77ord=[redacted]');
  });

  it('a URL given as a value keeps its user name, not its password', () => {
    const url = `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://hooks:hunter2@receiver.example/pay?x=1')}`;
    expect(loggedUrl(url)).toBe(`/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://hooks:***@receiver.example/pay?x=1')}`);
    expect(loggedUrl(url)).not.toContain('hunter2');
    // A password holding @, a user name holding @: the whole password goes.
    expect(loggedUrl(`/x?url=${encodeURIComponent('https://hooks:hunter@2025@host/p')}`)).toBe(`/x?url=${encodeURIComponent('https://hooks:***@host/p')}`);
    expect(loggedUrl(`/x?url=${encodeURIComponent('https://me@corp:hunter2@host/p')}`)).toBe(`/x?url=${encodeURIComponent('https://me@corp:***@host/p')}`);
    // A user name given alone may be a token (`https://TOKEN@host`): it goes (a user test, 2026-12-07: it was logged).
    expect(loggedUrl(`/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://ghp_tok3n@receiver.example/pay')}`)).toBe(
      `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://***@receiver.example/pay')}`,
    );
    // No user info: unchanged.
    const plain = `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('https://receiver.example/pay?x=1')}`;
    expect(loggedUrl(plain)).toBe(plain);
  });

  it('names that say secret in other ways: an x- prefix, - for _, a [] suffix, a name that holds token, secret, password… (a user test, 2026-12-07: these were logged)', () => {
    expect(loggedUrl('/cb?x-api-key=k1&X-Auth-Token=k2&token[]=k3&token%5B0%5D=k4&webhook_secret=k5&API-KEY=k6&limit=5')).toBe(
      '/cb?x-api-key=[redacted]&X-Auth-Token=[redacted]&token[]=[redacted]&token%5B0%5D=[redacted]&webhook_secret=[redacted]&API-KEY=[redacted]&limit=5',
    );
    // A secret's word inside brackets or after a prefix; a private, access or session key (a review: these were logged).
    expect(loggedUrl('/cb?user%5Bpassword%5D=k7&data[api_key]=k8&private_key=k9&access-key=k10&sessionid=k11')).toBe(
      '/cb?user%5Bpassword%5D=[redacted]&data[api_key]=[redacted]&private_key=[redacted]&access-key=[redacted]&sessionid=[redacted]',
    );
    // Names that merely resemble one keep their values.
    expect(loggedUrl('/v1/sim/intents?status=APPROVED&keyword=x&author=y')).toBe('/v1/sim/intents?status=APPROVED&keyword=x&author=y');
  });

  it("a URL given as a value has its own query's secrets left out", () => {
    const url = `/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('http://127.0.0.1:9/h?token=t0ps3cret&x=1')}`;
    expect(loggedUrl(url)).toBe(`/v1/sim/webhooks/disabled-urls?url=${encodeURIComponent('http://127.0.0.1:9/h?token=[redacted]&x=1')}`);
    expect(loggedUrl(url)).not.toContain('t0ps3cret');
  });
});
