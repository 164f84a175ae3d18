import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * The console's session and CSRF tokens, signed so any replica can check them.
 *
 * A logged-in session is a cookie `<nonce>.1.<expiresAt>.<mac>` (expiresAt: epoch ms, the login
 * plus CONSOLE_SESSION_TTL_MS), an anonymous one `<nonce>.0.<mac>`; each MAC'd with a key derived
 * from CONSOLE_TOKEN (or, without one, from a random key made at start, shared on Redis: anonymous
 * sessions only protect against CSRF, grant nothing and do not expire). The cookie is HttpOnly and
 * SameSite=Strict, so page scripts cannot read it and other sites cannot send it; a logged-in one
 * has a Max-Age to its expiry. A state-changing request must also carry the session's CSRF token
 * (a MAC of its nonce) in a form field or the `x-csrf-token` header: the double protection the
 * issue asks for. The only per-session state is a logged-out session's nonce, kept until its
 * expiry (RevokedSessionStore, on Redis for every replica); the plugin checks it, not this class.
 * Hand-written rather than @fastify/cookie + @fastify/csrf-protection + a session store: one
 * cookie, two MACs, and state only for sessions ended early.
 * Cookies of versions before 2026-12-04 (`<nonce>.1.<mac>`, which never expired) are refused: a
 * log in again.
 *
 * The key comes from CONSOLE_TOKEN through scrypt, not a plain HMAC: every visitor gets an
 * anonymous cookie MAC'd with it, and a fast key would let anyone who can reach the login form
 * try tokens offline, past its per-address limit (a review, 2026-12-05). The cookie's name carries
 * a tag of the key (`paysim_console_<tag>`): browsers keep cookies per host, not per port, so two
 * consoles on one host with one name replaced each other's sessions at every visit (a user
 * test); processes sharing a key (one CONSOLE_TOKEN, or the key on Redis) share the name too. A
 * process whose key is its own (no token, memory) names it by the port the browser sent it to.
 * @see issue 13 "Safety"
 */

/** The session cookie's name before its tag (see `ConsoleAuth.cookieName`). */
export const SESSION_COOKIE_PREFIX = 'paysim_console_';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** How long a logged-in session lasts unless CONSOLE_SESSION_TTL_MS says otherwise (12 hours). */
export const DEFAULT_SESSION_TTL_MS = 12 * 3_600_000;

export interface Session {
  nonce: string;
  authenticated: boolean;
  /** A logged-in session's expiry (epoch ms); an anonymous session has none. */
  expiresAt?: number;
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

/**
 * scrypt's cost for the key of a CONSOLE_TOKEN: about 40 ms and 16 MiB here, once per token and
 * process, so a guess of the token costs an offline attacker as much (OWASP's minimum for scrypt).
 */
const TOKEN_KEY_COST = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
/** The keys derived so far, by token: an app built again in one process (the tests) pays once. */
const tokenKeys = new Map<string, Buffer>();

/** The session key of `token`: the same in every process given it, so replicas agree without sharing anything. */
function tokenKey(token: string): Buffer {
  let key = tokenKeys.get(token);
  if (key === undefined) {
    key = scryptSync(token, 'paysim-console-session', 32, TOKEN_KEY_COST);
    tokenKeys.set(token, key);
  }
  return key;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleAuth {
  readonly #key: Buffer;
  readonly #token: Buffer | undefined;
  readonly #ttlMs: number;
  /** The tag of a key shared or derived (a CONSOLE_TOKEN's, or the one on Redis); undefined for one drawn here. */
  readonly #keyTag: string | undefined;

  /**
   * `sessionKey` (base64, without a token): the key the processes of one service share on Redis; else one is drawn.
   * `ttlMs`: how long a logged-in session lasts (CONSOLE_SESSION_TTL_MS).
   */
  constructor(token: string | undefined, sessionKey?: string, ttlMs = DEFAULT_SESSION_TTL_MS) {
    this.#token = token === undefined ? undefined : Buffer.from(token, 'utf8');
    this.#ttlMs = ttlMs;
    const drawn = token === undefined && sessionKey === undefined;
    this.#key = token !== undefined ? tokenKey(token) : sessionKey !== undefined ? Buffer.from(sessionKey, 'base64') : randomBytes(32);
    // 48 bits of a MAC: tells keys apart on one host, and says nothing of the key.
    this.#keyTag = drawn ? undefined : mac(this.#key, 'cookie-name').slice(0, 8);
  }

  /**
   * The session cookie's name for a request the browser sent to `port` (its `Host`'s): a tag of
   * the key, or, for a key drawn at this start (no token, memory), the port. Named by such a key,
   * each restart left one more cookie in the browser until the console's Cookie header was past
   * what Node takes (431, about 170 restarts: a review); named by the port the process listens on,
   * two containers publishing one container port on two host ports shared a name (a review). The
   * browser's port tells the consoles of one host apart and stays across restarts.
   */
  cookieName(port: number): string {
    return `${SESSION_COOKIE_PREFIX}${this.#keyTag ?? `port${port}`}`;
  }

  /** Whether CONSOLE_TOKEN is set: pages and actions need a logged-in session. */
  get required(): boolean {
    return this.#token !== undefined;
  }

  /** Whether `given` is CONSOLE_TOKEN (constant time). */
  tokenMatches(given: string): boolean {
    if (this.#token === undefined) return false;
    const bytes = Buffer.from(given, 'utf8');
    return bytes.length === this.#token.length && timingSafeEqual(bytes, this.#token);
  }

  /** How long a logged-in session lasts (ms). */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** A new session cookie value; a logged-in one expires `ttlMs` after `now`. */
  issue(authenticated: boolean, now: number): { value: string; session: Session } {
    const nonce = randomBytes(18).toString('base64url');
    if (!authenticated) return { value: `${nonce}.0.${mac(this.#key, `session:${nonce}:0`)}`, session: { nonce, authenticated } };
    const expiresAt = now + this.#ttlMs;
    return { value: `${nonce}.1.${expiresAt}.${mac(this.#key, `session:${nonce}:1:${expiresAt}`)}`, session: { nonce, authenticated, expiresAt } };
  }

  /** The session a cookie value stands for at `now`; undefined when it is missing, malformed, forged or expired. */
  verify(value: string | undefined, now: number): Session | undefined {
    if (value === undefined) return undefined;
    const parts = value.split('.');
    const [nonce, level] = parts;
    if (nonce === undefined || nonce === '') return undefined;
    if (level === '0' && parts.length === 3) {
      return same(parts[2] as string, mac(this.#key, `session:${nonce}:0`)) ? { nonce, authenticated: false } : undefined;
    }
    if (level !== '1' || parts.length !== 4 || !/^\d{1,15}$/.test(parts[2] as string)) return undefined;
    const expiresAt = Number(parts[2]);
    if (!same(parts[3] as string, mac(this.#key, `session:${nonce}:1:${expiresAt}`)) || expiresAt <= now) return undefined;
    return { nonce, authenticated: true, expiresAt };
  }

  csrfToken(session: Session): string {
    return mac(this.#key, `csrf:${session.nonce}`);
  }

  csrfMatches(session: Session, given: string | undefined): boolean {
    return given !== undefined && same(given, this.csrfToken(session));
  }
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie of session cookie `name`: a logged-in one with a Max-Age to its expiry (`maxAgeMs` from now), an anonymous one for the browser's session. */
export function sessionCookie(name: string, value: string, secure: boolean, maxAgeMs?: number): string {
  const maxAge = maxAgeMs === undefined ? '' : `; Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`;
  return `${name}=${value}; Path=/console; HttpOnly; SameSite=Strict${maxAge}${secure ? '; Secure' : ''}`;
}

export function clearedCookie(name: string): string {
  return `${name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
}
