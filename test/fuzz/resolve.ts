import { Fill, isForeignUrl, isPlainObject, LOCAL_HOST, LocalUrl, PoolRef, RawJson, type Draft, type Value } from './values.ts';

/**
 * Turns a generated request into what `app.inject` sends, against what the app has answered so
 * far (the `World`): placeholders become ids and local URLs, the path and query are
 * percent-encoded (or sent raw where the mutation said so), headers are what Node's HTTP parser
 * would hand the app for those bytes, and the body is serialized. Every request passes
 * `assertLocalOnly` before it is sent.
 */

/** Ids (and URLs, users) the app has handed out, by kind, so later requests can refer to them. */
export class World {
  readonly #pools = new Map<string, { list: string[]; seen: Set<string> }>();
  readonly receiverPort: number;
  readonly closedPort: number;

  constructor(ports: { receiver: number; closed: number }, seeds: Record<string, readonly string[]> = {}) {
    this.receiverPort = ports.receiver;
    this.closedPort = ports.closed;
    for (const [kind, values] of Object.entries(seeds)) for (const v of values) this.add(kind, v);
  }

  add(kind: string, value: string): void {
    let pool = this.#pools.get(kind);
    if (pool === undefined) {
      pool = { list: [], seen: new Set() };
      this.#pools.set(kind, pool);
    }
    if (pool.seen.has(value)) return;
    pool.seen.add(value);
    pool.list.push(value);
  }

  /** The `pick`-th value of a kind (modulo; the newest 64 are picked most often), or undefined when there is none yet. */
  pick(kind: string, pick: number): string | undefined {
    const list = this.#pools.get(kind)?.list;
    if (list === undefined || list.length === 0) return undefined;
    const recent = Math.min(list.length, 64);
    return pick % 4 === 0 ? list[pick % list.length] : list[list.length - 1 - (Math.floor(pick / 4) % recent)];
  }

  size(kind: string): number {
    return this.#pools.get(kind)?.list.length ?? 0;
  }

  localUrl(url: LocalUrl): string {
    const text = `http://${LOCAL_HOST}:${url.target === 'receiver' ? this.receiverPort : this.closedPort}${url.path}`;
    this.add('url', text);
    return text;
  }

  /** Records the ids (and local URLs) in a response body. */
  harvest(body: unknown): void {
    if (typeof body === 'string') {
      const id = ID.exec(body);
      if (id?.[1] !== undefined) this.add(id[1], body);
      else if (body.startsWith(`http://${LOCAL_HOST}:`) && !isForeignUrl(body)) this.add('url', body);
    } else if (Array.isArray(body)) {
      for (const item of body) this.harvest(item);
    } else if (body !== null && typeof body === 'object') {
      // The /api/v2 API's ids are `pay_<tx_id>`, no ULID: known by the field that holds them.
      const v2Id = (body as Record<string, unknown>).payment_id;
      if (typeof v2Id === 'string') this.add('v2pay', v2Id);
      // A waiting room's id is its creator's choice, no ULID: known by the field that holds it.
      const roomId = (body as Record<string, unknown>).roomId;
      if (typeof roomId === 'string') this.add('room', roomId);
      for (const value of Object.values(body)) this.harvest(value);
    }
  }
}

const ID = /^([a-z]+)_[0-9A-HJKMNP-TV-Z]{26}$/;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A well-formed id of `kind` that the app never handed out. */
function unknownId(kind: string, pick: number): string {
  if (kind === 'perf') return `perf_${900 + (pick % 100)}`;
  if (kind === 'user') return `user_fuzz_${pick % 7}`;
  let n = pick;
  let tail = '';
  for (let i = 0; i < 16; i++) {
    tail += CROCKFORD[n % 32];
    n = Math.floor(n / 32);
  }
  return `${kind}_01KZZZZZZZ${tail}`;
}

/** The text a placeholder stands for (scalars only: RawJson and Fill only mean something inside a JSON body). */
function resolveScalar(value: Value, world: World): string {
  if (value instanceof PoolRef) {
    if (value.kind === 'url') return world.pick('url', value.pick) ?? world.localUrl(new LocalUrl('closed', '/never'));
    return world.pick(value.kind, value.pick) ?? unknownId(value.kind, value.pick);
  }
  if (value instanceof LocalUrl) return world.localUrl(value);
  if (value instanceof RawJson) return value.text;
  if (value instanceof Fill) return value.unit.repeat(16);
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return String(value);
  return JSON.stringify(resolveJson(value, world));
}

/** A JSON value with PoolRef and LocalUrl resolved; RawJson and Fill stay (the serializer splices them). */
function resolveJson(value: Value, world: World): Value {
  if (value instanceof PoolRef || value instanceof LocalUrl) return resolveScalar(value, world);
  if (typeof value === 'string') return isForeignUrl(value) ? world.localUrl(new LocalUrl('closed', '/sanitized')) : value;
  if (Array.isArray(value)) return value.map((v) => resolveJson(v, world));
  if (isPlainObject(value)) {
    const out: { [key: string]: Value } = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: resolveJson(v, world), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

const MARKER = '\u0001FUZZRAW';

/** JSON text with RawJson spliced in and each Fill sized so the body ends `limit - 1` or `limit + 1` bytes long. */
export function serialize(value: Value, bodyLimit: number): string {
  const raws: string[] = [];
  const fills: Fill[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawJson) {
      raws.push(v.text);
      return `${MARKER}R${raws.length - 1}`;
    }
    if (v instanceof Fill) {
      fills.push(v);
      return `${MARKER}F${fills.length - 1}`;
    }
    return v;
  }) as string | undefined;
  if (text === undefined) return 'null';
  const splice = (fillTexts: string[]): string =>
    text.replace(new RegExp(`"${MARKER}([RF])(\\d+)"`, 'g'), (_m, kind: string, index: string) => (kind === 'R' ? (raws[Number(index)] as string) : JSON.stringify(fillTexts[Number(index)])));
  if (fills.length === 0) return splice([]);
  // The body without fills, then the first fill takes up the rest (UTF-8 bytes, as the limit counts them).
  const empty = fills.map(() => '');
  const base = Buffer.byteLength(splice(empty));
  const first = fills[0] as Fill;
  const unitBytes = Buffer.byteLength(JSON.stringify(first.unit)) - 2;
  const wanted = first.side === 'under' ? bodyLimit - 1 : bodyLimit + 1;
  const units = Math.max(0, Math.floor((wanted - base) / Math.max(1, unitBytes)));
  let fill = first.unit.repeat(units);
  // Pad with ASCII to land on the exact byte count.
  const short = wanted - base - units * unitBytes;
  if (short > 0) fill += 'a'.repeat(short);
  empty[0] = fill;
  return splice(empty);
}

/** Node's HTTP parser keeps these headers' first value and drops duplicates; others are joined with ", ". */
const FIRST_WINS = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/**
 * What the app sees for a header value sent as UTF-8 bytes through Node's parser: bytes as
 * latin1 characters, control characters other than tab refused by the parser (left out here), and
 * surrounding spaces and tabs trimmed.
 */
export function onTheWire(value: string): string {
  const latin1 = Buffer.from(value, 'utf8').toString('latin1');
  // eslint-disable-next-line no-control-regex
  return latin1.replace(/[\u0000-\u0008\u000A-\u001F\u007F]/g, '').replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Percent-encodes text for a path segment or query component; lone surrogates become the bytes of U+FFFD. */
function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
}

export interface ResolvedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload: string | Buffer | undefined;
}

export function resolveDraft(draft: Draft, world: World, bodyLimit: number): ResolvedRequest {
  let path = '';
  for (const piece of draft.path) {
    if ('lit' in piece) path += piece.lit;
    else if ('raw' in piece) path += piece.raw;
    else path += encode(resolveScalar(piece.value, world));
  }
  path += draft.pathSuffix;
  if (!path.startsWith('/')) path = `/${path}`;
  const parts: string[] = [];
  for (const piece of draft.query) {
    if ('raw' in piece) parts.push(piece.raw.replace(/^\?/, ''));
    else parts.push(`${encode(piece.name)}=${encode(resolveScalar(piece.value, world))}`);
  }
  const url = parts.length === 0 ? path : `${path}?${parts.join('&')}`;

  const headers: Record<string, string> = {};
  for (const header of draft.headers) {
    const values = header.values.map((v) => onTheWire(resolveScalar(v, world)));
    if (values.length === 0) continue;
    headers[header.name] = FIRST_WINS.has(header.name) ? (values[0] as string) : values.join(', ');
  }

  let payload: string | Buffer | undefined;
  switch (draft.body.kind) {
    case 'none':
      break;
    case 'json':
      payload = serialize(resolveJson(draft.body.value, world), bodyLimit);
      break;
    case 'text':
      payload = draft.body.text;
      break;
    case 'bytes':
      payload = Buffer.from(draft.body.bytes);
      break;
  }
  const contentType = draft.contentType === undefined ? (payload === undefined ? null : 'application/json') : draft.contentType;
  if (contentType !== null) headers['content-type'] = onTheWire(contentType);
  if (draft.contentLength !== undefined && payload !== undefined) headers['content-length'] = draft.contentLength;
  return { method: draft.method, url, headers, payload };
}

export class EgressError extends Error {
  override name = 'EgressError';
}

/**
 * Throws unless every URL the request carries names 127.0.0.1: each string of a JSON body (as
 * the app would parse it), and anything that looks like a URL in a body that is not JSON. The
 * generator only makes local URLs; this is the check that it did.
 */
export function assertLocalOnly(request: ResolvedRequest): void {
  if (request.payload === undefined) return;
  const text = typeof request.payload === 'string' ? request.payload : request.payload.toString('utf8');
  for (const match of text.matchAll(/https?:\/\/[^\s"'\\<>]*/gi)) {
    if (isForeignUrl(match[0])) throw new EgressError(`a generated request names a host other than ${LOCAL_HOST}: ${match[0]}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, '').trim());
  } catch {
    return;
  }
  const visit = (node: unknown): void => {
    if (typeof node === 'string') {
      if (isForeignUrl(node)) throw new EgressError(`a generated request names a host other than ${LOCAL_HOST}: ${node}`);
    } else if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') Object.values(node).forEach(visit);
  };
  visit(parsed);
}
