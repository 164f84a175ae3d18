/**
 * A request's URL as the request line logs it: the path as it came, and a query string whose
 * secrets are not written. A query value is left out (`[redacted]`) when its name says it is a
 * secret (`token`, `password`, `_csrf`, `signature`, …), and a URL given as a value keeps its
 * user name but not its password (`DELETE /v1/sim/webhooks/disabled-urls?url=…` names a webhook
 * URL, which may carry one). A URL without a query string is returned as it is: the common case
 * costs one search for `?`.
 */

const SECRET_NAMES: ReadonlySet<string> = new Set([
  'access_token',
  'api_key',
  'apikey',
  'auth',
  'authorization',
  'client_secret',
  'code',
  'csrf',
  '_csrf',
  'id_token',
  'key',
  'pass',
  'password',
  'refresh_token',
  'secret',
  'session',
  'sig',
  'signature',
  'token',
]);

/** `scheme://user:password@` at the start of a value. */
const USERINFO_WITH_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#@]*@/i;

export const REDACTED = '[redacted]';

export function loggedUrl(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const pairs = url.slice(mark + 1).split('&');
  let changed = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as string;
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const name = decoded(pair.slice(0, equals)).toLowerCase();
    if (SECRET_NAMES.has(name)) {
      pairs[i] = `${pair.slice(0, equals)}=${REDACTED}`;
      changed = true;
      continue;
    }
    const value = decoded(pair.slice(equals + 1));
    if (USERINFO_WITH_PASSWORD.test(value)) {
      pairs[i] = `${pair.slice(0, equals)}=${encodeURIComponent(value.replace(USERINFO_WITH_PASSWORD, '$1***@'))}`;
      changed = true;
    }
  }
  return changed ? `${url.slice(0, mark)}?${pairs.join('&')}` : url;
}

/** A query component decoded as a form would be (`+` is a space); as it came when it is not valid percent-encoding. */
function decoded(component: string): string {
  try {
    return decodeURIComponent(component.replaceAll('+', ' '));
  } catch {
    return component;
  }
}
