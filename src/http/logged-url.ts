/**
 * A request's URL as the request line logs it: the path as it came, and a query string whose
 * secrets are not written. A query value is left out (`[redacted]`) when its name says it is a
 * secret: one of SECRET_NAMES (with or without an `x-` prefix or a `[…]` suffix) or a name
 * holding one of SECRET_PART's words, in any case (`token`, `X-Api-Key`, `token[]`,
 * `webhook_secret`, `user[password]`). A URL given as a value (`DELETE /v1/sim/webhooks/disabled-urls?url=…` names
 * a webhook URL) keeps its user name but not its password, loses a user name given alone (a
 * token may be written so), and its own query string is logged by the same rules. A URL without a
 * query string is returned as it is: the common case costs one search for `?`.
 */

/** Names that say secret as a whole (with or without an `x-` prefix or a `[…]` suffix); a name holding one of SECRET_PART's words says it anywhere. */
const SECRET_NAMES: ReadonlySet<string> = new Set(['auth', 'authorization', 'code', 'csrf', '_csrf', 'key', 'pass', 'sig']);

/**
 * What a name holding one of these says of its value, wherever it is in the name (`x_auth_token`,
 * `webhook_secret`, `user[password]`, `private-key`): `-` and `_` alike, in one expression (a
 * review measured a list of substring searches at twice the line's cost of the URL).
 */
const SECRET_PART = /token|secret|passw|api[-_]?key|signature|credential|session|private[-_]?key|access[-_]?key/;

/**
 * What isSecretName said of the names last seen, as they came: a few names (`status`, `limit`,
 * `cursor`) make most of the requests, and asking again cost more than the rest of the URL. Any
 * name a client sends may come, so it is emptied when full.
 */
const secretNames = new Map<string, boolean>();
const SECRET_NAMES_CACHED = 256;

function isSecretRawName(rawName: string): boolean {
  let secret = secretNames.get(rawName);
  if (secret === undefined) {
    secret = isSecretName(rawName.includes('%') || rawName.includes('+') ? decoded(rawName) : rawName);
    if (secretNames.size >= SECRET_NAMES_CACHED) secretNames.clear();
    secretNames.set(rawName, secret);
  }
  return secret;
}

/** Whether a query parameter's name (decoded) says its value is a secret. */
function isSecretName(decodedName: string): boolean {
  const lower = decodedName.toLowerCase();
  if (SECRET_PART.test(lower)) return true;
  // Exact names (`code`, `key`, `sig`, `auth`…), with or without an `x-` prefix or a `[…]` suffix.
  let name = lower;
  const bracket = name.indexOf('[');
  if (bracket > 0) name = name.slice(0, bracket);
  if (name.startsWith('x-') || name.startsWith('x_')) name = name.slice(2);
  return SECRET_NAMES.has(name) || SECRET_NAMES.has(name.replaceAll('-', '_'));
}

/** `scheme://user@` at the start of a value, a user name without a password (up to the last `@` before the path). */
const USERINFO_WITHOUT_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#:]*@/i;
const ABSOLUTE_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

/** `scheme://user:password@` at the start of a value (the password up to the last `@` before the path, which may hold `@`s). */
const USERINFO_WITH_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#:]*:)[^/?#]*@/i;

export const REDACTED = '[redacted]';

/** `value` with the password of a URL at its start replaced by `***` (anything else unchanged). */
export function withoutUrlPassword(value: string): string {
  return value.replace(USERINFO_WITH_PASSWORD, '$1***@');
}

/**
 * A value that may be a URL, as logs and start errors show it: without its password, its user
 * name given alone, or its query's secrets (as loggedUrl leaves them out); anything else unchanged.
 */
export function maskedUrl(value: string): string {
  return maskedUrlValue(value, 0);
}

/** A URL given as a query value, as it is logged: see loggedUrl. `depth` bounds URLs within URLs. */
function maskedUrlValue(value: string, depth: number): string {
  const withoutPassword = withoutUrlPassword(value);
  const masked = withoutPassword === value ? value.replace(USERINFO_WITHOUT_PASSWORD, '$1***@') : withoutPassword;
  return depth < 2 && ABSOLUTE_URL.test(masked) ? withQuerySecretsOut(masked, depth + 1) : masked;
}

export function loggedUrl(url: string): string {
  return withQuerySecretsOut(url, 0);
}

/** loggedUrl, for a URL found `depth` URLs deep in another's query. */
function withQuerySecretsOut(url: string, depth: number): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const pairs = url.slice(mark + 1).split('&');
  let changed = false;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i] as string;
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const rawName = pair.slice(0, equals);
    if (isSecretRawName(rawName)) {
      pairs[i] = `${rawName}=${REDACTED}`;
      changed = true;
      continue;
    }
    // A URL's user info needs an @ and its query a ? (or their encodings): most values are passed over here.
    const rawValue = pair.slice(equals + 1);
    if (!rawValue.includes('@') && !rawValue.includes('?') && !(rawValue.includes('%') && /%40|%3f/i.test(rawValue))) continue;
    const value = decoded(rawValue);
    const masked = maskedUrlValue(value, depth);
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
