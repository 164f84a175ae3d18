import { isUtf8 } from 'node:buffer';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import secureJson from 'secure-json-parse';
import { lineAndColumn, locateJsonError } from './json-locate.ts';

/**
 * The one body parser: JSON only (anything else is 415 before a route runs). An empty body is
 * no body (`undefined`) whatever its `Content-Type`, so a bodyless POST works as sent by curl's
 * `-d ''` or a Java client (a form type) too; the route's schema decides whether a body was
 * required. Malformed JSON is a 400 that says where it broke (`MalformedJsonError`: position,
 * line, column and what was expected); so are bytes that are not UTF-8 (RFC 8259), which were
 * read as U+FFFD before 2026-12-05, so `dup\xE8` and `dup\xE9` were one id. A `charset`
 * parameter is not read (RFC 8259 defines none; Spring's RestTemplate sends ISO-8859-1 with
 * UTF-8 bodies), but for UTF-16 and UTF-32, whose bodies are never UTF-8: those, and a compressed
 * body (`Content-Encoding`), are a 415 that says so (`UnreadableBodyError`).
 * `__proto__` and `constructor.prototype` keys are refused, as Fastify's own parser does
 * (secure-json-parse).
 */
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

/**
 * Most arrays and objects a body may nest inside one another. Deeper bodies are refused (400,
 * where the limit was passed) before any route stores them: a few kilobytes of `[[[…]]]` in a
 * free-form field (FluxPay's `metadata`) once made an order that every later read, the outbox and
 * the Redis writes failed to serialize (the call stack ran out).
 */
export const MAX_JSON_DEPTH = 64;

/** JSON that does not parse, and where: `position` is 0-based (characters), `line` and `column` 1-based. */
export class MalformedJsonError extends SyntaxError {
  override name = 'MalformedJsonError';
  readonly statusCode = 400;
  readonly position: number;
  readonly line: number;
  readonly column: number;
  /** What was wrong there, e.g. `Unexpected token } (expected a property name in double quotes)`. */
  readonly reason: string;

  /** `malformed`: not JSON (RFC 8259) or no Unicode text; `too_deep`: well-formed, but nested deeper than MAX_JSON_DEPTH. */
  readonly kind: 'malformed' | 'too_deep';

  constructor(text: string, position: number, reason: string, kind: 'malformed' | 'too_deep' = 'malformed') {
    const line = lineAndColumn(text, position);
    super(`${kind === 'malformed' ? 'Malformed JSON' : 'JSON nested too deeply'} at position ${position} (line ${line.line}, column ${line.column}): ${reason}`);
    this.kind = kind;
    this.position = position;
    this.line = line.line;
    this.column = line.column;
    this.reason = reason;
  }
}

/** A body the service will not read as it was sent (another charset, a content coding): 415, in the dialect's shape, saying why. */
export class UnreadableBodyError extends Error {
  override name = 'UnreadableBodyError';
  readonly statusCode = 415;
}

export function useJsonBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJsonBody);
  // Any other type: an empty body is no body (the request's headers are left as sent: a fault
  // rule may match its Content-Type), anything else a 415.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type']), undefined);
  });
}

/**
 * An onRequest hook (after the request's context is bound, so that its 415 carries the trace id),
 * before any parser: a request whose body is compressed is refused, as it is not decoded (a gzipped
 * body was "Malformed JSON at position 0", and a plain one labelled gzip was read). One without a
 * body (`Content-Length: 0` or none, no `Transfer-Encoding`) has nothing to decode.
 */
export function refuseUnreadableBodies(request: FastifyRequest, _reply: unknown, done: (error?: Error) => void): void {
  const headers = request.headers;
  if (headers['transfer-encoding'] === undefined && (headers['content-length'] === '0' || headers['content-length'] === undefined)) return done();
  const coding = headers['content-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
    return done(new UnreadableBodyError(`The request body is encoded (Content-Encoding: ${shownHeader(coding)}), which is not read: send it uncompressed.`));
  }
  done();
}

/** Charsets whose text is never UTF-8 (every other one names UTF-8 text, or is not read). */
const NOT_UTF8 = /^(?:utf-?(?:16|32)|ucs-?[24])/;

/**
 * The parser of `useJsonBodies`, for a scope that reads other content types as JSON too. `fastApi`:
 * as `/api/v2`'s original reads a body (any `charset`, and bytes that are not UTF-8 a 400 "There
 * was an error parsing the body", FastAPI's answer to a body it cannot decode).
 */
export function parseJsonBody(request: Pick<FastifyRequest, 'headers'>, body: string | Buffer, done: (error: Error | null, value?: unknown) => void, fastApi = false): void {
  // No body, whatever its type says (a review: an empty body named UTF-16 was a 415).
  if (body.length === 0) return done(null, undefined);
  const charset = fastApi ? undefined : charsetOf(request.headers['content-type']);
  if (charset !== undefined && NOT_UTF8.test(charset)) {
    return done(new UnreadableBodyError(`The request body's charset ${shownHeader(charset)} is not read: send JSON as UTF-8 (application/json, or with charset=utf-8).`), undefined);
  }
  let text: string;
  if (typeof body === 'string') text = body;
  else if (isUtf8(body)) text = body.toString('utf8');
  else if (fastApi) return done(Object.assign(new Error('There was an error parsing the body'), { statusCode: 400 }), undefined);
  else {
    const bad = firstInvalidUtf8(body);
    const before = body.subarray(0, bad).toString('utf8');
    return done(new MalformedJsonError(before, before.length, `Invalid UTF-8 (byte 0x${(body[bad] ?? 0).toString(16).toUpperCase().padStart(2, '0')}): a JSON body is UTF-8 text`), undefined);
  }
  if (text.length === 0 || (text.length < 16 && text.trim() === '')) return done(null, undefined);
  let value: unknown;
  try {
    value = secureJson.parse(text, undefined, PARSE_OPTIONS);
  } catch (error) {
    return done(bodyError(text, error), undefined);
  }
  const lone = loneSurrogate(text);
  if (lone !== undefined) return done(new MalformedJsonError(text, lone.position, lone.reason), undefined);
  const deep = tooDeep(text, MAX_JSON_DEPTH);
  if (deep !== undefined) return done(new MalformedJsonError(text, deep, `more than ${MAX_JSON_DEPTH} arrays and objects inside one another`, 'too_deep'), undefined);
  done(null, value);
}

/**
 * Where well-formed JSON text opens its `max + 1`-th array or object inside one another, or
 * undefined. A text of at most `max` characters cannot (each level needs one), so the common small
 * body is not scanned; strings are skipped whole.
 */
export function tooDeep(text: string, max: number): number | undefined {
  if (text.length <= max) return undefined;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) {
      // A string: to its closing quote, past escaped ones.
      for (i++; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x5c) i++;
        else if (c === 0x22) break;
      }
    } else if (code === 0x5b || code === 0x7b) {
      if (++depth > max) return i;
    } else if (code === 0x5d || code === 0x7d) {
      depth--;
    }
  }
  return undefined;
}

/** A `\uXXXX` escape that names one half of a surrogate pair, a high one at least 0xD800. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/**
 * The first escape in (parsed, hence well-formed) JSON text that makes a lone UTF-16 surrogate,
 * such as `"\udc00"`: JSON allows it, but it is no Unicode text, and canonical JSON (the
 * idempotency fingerprint), UTF-8 encoding and other systems refuse or mangle it. Bytes on the
 * wire never make one (invalid UTF-8 decodes to U+FFFD): only escapes do, so text without a
 * surrogate escape is not scanned.
 */
export function loneSurrogate(text: string): { position: number; reason: string } | undefined {
  if (!SURROGATE_ESCAPE.test(text)) return undefined;
  let pendingHigh = -1;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      if (pendingHigh >= 0) break;
      continue;
    }
    const next = text[i + 1];
    if (next !== 'u') {
      if (pendingHigh >= 0) break;
      i++;
      continue;
    }
    const code = Number.parseInt(text.slice(i + 2, i + 6), 16);
    const isHigh = code >= 0xd800 && code <= 0xdbff;
    const isLow = code >= 0xdc00 && code <= 0xdfff;
    if (pendingHigh >= 0) {
      if (!isLow) break;
      pendingHigh = -1;
    } else if (isHigh) {
      pendingHigh = i;
    } else if (isLow) {
      return { position: i, reason: `Lone surrogate ${text.slice(i, i + 6)} in a string (a low surrogate without a high one before it is not Unicode text)` };
    }
    i += 5;
  }
  if (pendingHigh >= 0) return { position: pendingHigh, reason: `Lone surrogate ${text.slice(pendingHigh, pendingHigh + 6)} in a string (a high surrogate must be followed by a low one)` };
  return undefined;
}

/** Malformed JSON, located; anything else the parser refused (a `__proto__` key) as it said it. */
function bodyError(text: string, error: unknown): SyntaxError {
  const found = locateJsonError(text);
  if (found !== undefined) return new MalformedJsonError(text, found.position, found.reason);
  const problem = error instanceof Error ? error : new Error(String(error));
  const refused = new SyntaxError(problem.message) as SyntaxError & { statusCode: number };
  refused.statusCode = 400;
  return refused;
}

/** The `charset` parameter of a `Content-Type`, lower-cased and unquoted; undefined without one. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !contentType.includes('=')) return undefined;
  const found = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  return found === null ? undefined : (found[1] ?? found[2] ?? '').toLowerCase();
}

/** A header's value as an error message shows it: at most 40 characters, printable ASCII. */
function shownHeader(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > 40 ? `${printable.slice(0, 40)}…` : printable;
}

/**
 * The offset of the first byte of `bytes` that does not belong to well-formed UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF included), or its length when there is none.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [n, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [n, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [n, min] = [3, 0x10000];
    else return i;
    let code = b & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += n + 1;
  }
  return i;
}
