/**
 * What a generated request is made of before it is sent. Generation is pure (fast-check draws it
 * from a seed); a few parts can only be known when the request is sent, so they are placeholders
 * that the runner resolves against what the app has answered so far:
 * - `PoolRef`: an id of a kind (`pay`, `bk`, `whd`, `evt`, `perf`, a webhook `url`, a `user`)
 *   the app has handed out, picked by `pick`; a well-formed unknown one when none exists yet.
 * - `LocalUrl`: a webhook URL, always `http://127.0.0.1:<port>/…` (the local receiver or a closed port).
 * - `RawJson`: text spliced verbatim into the JSON body (`1e999`, `-0`, deep nesting).
 * - `Fill`: a string sized so that the whole body ends just under or just over BODY_LIMIT_BYTES.
 */

export class PoolRef {
  readonly kind: string;
  readonly pick: number;
  constructor(kind: string, pick: number) {
    this.kind = kind;
    this.pick = pick;
  }
  toString(): string {
    return `PoolRef(${this.kind}#${this.pick})`;
  }
}

export type LocalTarget = 'receiver' | 'closed';

export class LocalUrl {
  readonly target: LocalTarget;
  /** Path and query, starting with `/`. */
  readonly path: string;
  constructor(target: LocalTarget, path: string) {
    this.target = target;
    this.path = path.startsWith('/') ? path : `/${path}`;
  }
  toString(): string {
    return `LocalUrl(${this.target}${this.path})`;
  }
}

export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return `RawJson(${this.text.length > 40 ? `${this.text.slice(0, 40)}…[${this.text.length}]` : this.text})`;
  }
}

export class Fill {
  readonly side: 'under' | 'over';
  readonly unit: string;
  constructor(side: 'under' | 'over', unit: string) {
    this.side = side;
    this.unit = unit;
  }
  toString(): string {
    return `Fill(${this.side}, ${JSON.stringify(this.unit)})`;
  }
}

export type Value = null | boolean | number | string | Value[] | { [key: string]: Value } | PoolRef | LocalUrl | RawJson | Fill;

export type Placeholder = PoolRef | LocalUrl | RawJson | Fill;

export function isPlaceholder(value: unknown): value is Placeholder {
  return value instanceof PoolRef || value instanceof LocalUrl || value instanceof RawJson || value instanceof Fill;
}

export function isPlainObject(value: unknown): value is { [key: string]: Value } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isPlaceholder(value);
}

/** A piece of the request path: a literal (sent as is), a value (percent-encoded), or raw text (sent as is, e.g. `%E0%A4%A`). */
export type PathPiece = { lit: string } | { value: Value } | { raw: string };

/** A piece of the query string: a name and a value (both percent-encoded), or raw text. */
export type QueryPiece = { name: string; value: Value } | { raw: string };

export type BodyDraft = { kind: 'none' } | { kind: 'json'; value: Value } | { kind: 'text'; text: string } | { kind: 'bytes'; bytes: number[] };

export interface HeaderDraft {
  name: string;
  /** More than one: the header is sent that many times (joined as Node joins them). */
  values: Value[];
}

/** A request before its placeholders are resolved. */
export interface Draft {
  /** Index of the operation in the model; -1 for a path no operation has. */
  op: number;
  method: string;
  path: PathPiece[];
  /** Appended to the path as is (a structural mutation: `/`, `//x`, `;a`). */
  pathSuffix: string;
  query: QueryPiece[];
  headers: HeaderDraft[];
  body: BodyDraft;
  /** The Content-Type header: undefined means "the default for the body", null means none. */
  contentType: string | null | undefined;
  /** A wrong Content-Length (smaller than the body). */
  contentLength?: string | undefined;
  /** Which mutations were applied, for the statistics and the failure report. */
  tags: string[];
}

export type Step = { kind: 'advance'; ms: number } | { kind: 'request'; draft: Draft };

/** The only host a generated webhook or callback URL may name. */
export const LOCAL_HOST = '127.0.0.1';

/**
 * True for text that an URL parser reads as an http(s) URL of a host other than 127.0.0.1
 * (userinfo tricks like `http://127.0.0.1@evil/` included). Stricter than the app's own check.
 */
export function isForeignUrl(text: string): boolean {
  if (!text.includes(':')) return false;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== LOCAL_HOST;
}

/** `value` with every foreign URL string (from a document's examples, say) replaced by a local one. */
export function sanitizeUrls(value: Value): Value {
  if (typeof value === 'string') return isForeignUrl(value) ? new LocalUrl('closed', '/sanitized') : value;
  if (Array.isArray(value)) return value.map(sanitizeUrls);
  if (isPlainObject(value)) {
    const out: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: sanitizeUrls(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}
