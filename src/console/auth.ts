import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The console's session and CSRF tokens, stateless so any replica can check them.
 *
 * A session is a cookie `<nonce>.<level>.<mac>`, MAC'd with a key derived from CONSOLE_TOKEN (or,
 * without one, from a random key made at start: anonymous sessions only protect against CSRF).
 * `level` is `1` after a login with CONSOLE_TOKEN, `0` for an anonymous session. The cookie is
 * HttpOnly and SameSite=Strict, so page scripts cannot read it and other sites cannot send it.
 * A state-changing request must also carry the session's CSRF token (a MAC of its nonce) in a form
 * field or the `x-csrf-token` header: the double protection the issue asks for.
 * Hand-written rather than @fastify/cookie + @fastify/csrf-protection (+ a session store): one
 * cookie, two MACs, and no per-session state to keep or share between replicas.
 * @see issue 13 "Safety"
 */

export const SESSION_COOKIE = 'paysim_console';
export const CSRF_FIELD = '_csrf';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  nonce: string;
  authenticated: boolean;
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleAuth {
  readonly #key: Buffer;
  readonly #token: Buffer | undefined;

  /** `sessionKey` (base64, without a token): the key the processes of one service share on Redis; else one is drawn. */
  constructor(token: string | undefined, sessionKey?: string) {
    this.#token = token === undefined ? undefined : Buffer.from(token, 'utf8');
    this.#key = token !== undefined ? createHmac('sha256', 'paysim-console-session').update(token).digest() : sessionKey !== undefined ? Buffer.from(sessionKey, 'base64') : randomBytes(32);
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

  /** A new session cookie value. */
  issue(authenticated: boolean): { value: string; session: Session } {
    const nonce = randomBytes(18).toString('base64url');
    const level = authenticated ? '1' : '0';
    return { value: `${nonce}.${level}.${mac(this.#key, `session:${nonce}:${level}`)}`, session: { nonce, authenticated } };
  }

  /** The session a cookie value stands for; undefined when it is missing, malformed or forged. */
  verify(value: string | undefined): Session | undefined {
    if (value === undefined) return undefined;
    const [nonce, level, given, extra] = value.split('.');
    if (nonce === undefined || given === undefined || extra !== undefined || (level !== '0' && level !== '1')) return undefined;
    if (!same(given, mac(this.#key, `session:${nonce}:${level}`))) return undefined;
    return { nonce, authenticated: level === '1' };
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

export function sessionCookie(value: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`;
}
