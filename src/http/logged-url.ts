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

/** `scheme://user:password@` at the start of a value (the password up to the last `@` before the path, which may hold `@`s). */
const USERINFO_WITH_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#:]*:)[^/?#]*@/i;

export const REDACTED = '[redacted]';

/** `value` with the password of a URL at its start replaced by `***` (anything else unchanged). */
export function withoutUrlPassword(value: string): string {
  return value.replace(USERINFO_WITH_PASSWORD, '$1***@');
}

export function loggedUrl(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const pairs = url.slice(mark + 1).split('&');
  let changed = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as string;
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const rawName = pair.slice(0, equals);
    const name = (rawName.includes('%') || rawName.includes('+') ? decoded(rawName) : rawName).toLowerCase();
    if (SECRET_NAMES.has(name)) {
      pairs[i] = `${rawName}=${REDACTED}`;
      changed = true;
      continue;
    }
    // A password in a URL needs an @ (or its encoding): most values are passed over here.
    const rawValue = pair.slice(equals + 1);
    if (!rawValue.includes('@') && !rawValue.includes('%40')) continue;
    const value = decoded(rawValue);
    const masked = withoutUrlPassword(value);
    if (masked !== value) {
      pairs[i] = `${rawName}=${encodeURIComponent(masked)}`;
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

export const INVALID_URL = '(invalid URL)';

/** `https://host:port/path`: without user info, query and fragment, which may carry credentials. */
export function originAndPath(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin === 'null' ? parsed.protocol : parsed.origin}${parsed.pathname}`;
  } catch {
    return INVALID_URL;
  }
}
