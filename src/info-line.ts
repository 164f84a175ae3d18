import { tracingChannel } from 'node:diagnostics_channel';
import { pino, type Logger } from 'pino';

/**
 * An info line of flat fields (strings, numbers), written as pino writes it but by a template
 * instead of pino's general path: every request logs one such line (request-context.ts), and
 * through `logger.info` it cost ~2.3 µs (merging the objects, looking up serializers and
 * redaction for every field, escaping each string) against ~0.5 µs here (README "Performance").
 * The line is byte for byte pino's own:
 * `<level><time><bindings of the logger>,"key":value…,"msg":"…"}\n`.
 *
 * Only where pino would write exactly that: a logger whose options could change a line (a mixin,
 * a `logMethod` or `streamWrite` hook, a message prefix, a nested key, a log formatter, a
 * wildcard redaction, a stream that wants metadata) and a field with a serializer or a redaction
 * of its own go through `logger.info`, as does every line with a string that would need escaping
 * (pino's and `JSON.stringify`'s escaping differ: only printable ASCII without `"` and `\` is
 * written as is) and every line while pino's diagnostics channel has subscribers. A logger's
 * first line also checks the template against pino's `asJson` for a sample; should they ever
 * differ (another pino), the logger keeps pino's path.
 */

export type FlatFields = Readonly<Record<string, string | number | undefined>>;

const {
  asJsonSym,
  chindingsSym,
  endSym,
  errorKeySym,
  formattersSym,
  hooksSym,
  lsCacheSym,
  messageKeySym,
  mixinSym,
  needsMetadataGsym,
  nestedKeySym,
  serializersSym,
  streamSym,
  stringifiersSym,
  timeSym,
  wildcardFirstSym,
} = pino.symbols;
/** Left out of pino's types; a pino without it is not one this template knows. */
const msgPrefixSym = (pino.symbols as unknown as Record<string, symbol | undefined>).msgPrefixSym;

/** pino's diagnostics of `asJson`: a subscriber must see every line, so lines then take pino's path. */
const asJsonChannel = tracingChannel('pino_asJson');

/** Printable ASCII without `"` and `\`: written as is by pino's escaping and by `JSON.stringify` alike. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/**
 * A field name the template writes: an identifier. Others (an integer-like name, which an object
 * enumerates before every other key whatever its place, or one that needs escaping) take pino's path.
 */
const KEY = /^[A-Za-z_$][\w$]*$/;

/** What a logger's lines need beyond its own per-line state (time, bindings, level: read per line). */
interface Template {
  /** `,"msg":` */
  readonly messageKey: string;
  /** Per field name: true when pino writes it as is (no serializer, no redaction). */
  readonly plainKeys: Map<string, boolean>;
  readonly serializers: Record<string, unknown>;
  readonly stringifiers: Record<string, unknown>;
  readonly errorKey: string;
}

type PinoInternals = Logger & Record<symbol, unknown>;

/** Per logger: its template, or null when its lines must take pino's path. */
const templates = new WeakMap<object, Template | null>();

/** Writes `{...first, ...second}` with `message` at info, as `logger.info` would. */
export function writeInfoLine(logger: Logger, first: FlatFields, second: FlatFields, message: string): void {
  if (!asJsonChannel.hasSubscribers && PLAIN.test(message)) {
    let template = templates.get(logger);
    if (template === undefined) {
      template = templateOf(logger as PinoInternals, message);
      templates.set(logger, template);
    }
    if (template !== null) {
      if (!logger.isLevelEnabled('info')) return;
      const line = format(logger as PinoInternals, template, first, second, message);
      if (line !== undefined) {
        ((logger as PinoInternals)[streamSym] as { write(line: string): void }).write(line);
        return;
      }
    }
  }
  logger.info({ ...first, ...second }, message);
}

/** The line, or undefined when a field must take pino's path. */
function format(logger: PinoInternals, template: Template, first: FlatFields, second: FlatFields, message: string): string | undefined {
  let fields = '';
  for (const key in first) {
    // Own keys only, as the object spread copies them.
    if (!Object.hasOwn(first, key)) continue;
    // A key in both (even undefined in one): the spread keeps the first's position and the second's value.
    if (Object.hasOwn(second, key)) return undefined;
    const field = formatField(template, key, first[key]);
    if (field === undefined) return undefined;
    fields += field;
  }
  for (const key in second) {
    if (!Object.hasOwn(second, key)) continue;
    const field = formatField(template, key, second[key]);
    if (field === undefined) return undefined;
    fields += field;
  }
  return compose(logger, template, (logger[timeSym] as () => string)(), fields, message);
}

/** pino's order: the level, the time, the logger's bindings, the fields, the message, the end. */
function compose(logger: PinoInternals, template: Template, time: string, fields: string, message: string): string {
  const level = (logger[lsCacheSym] as Record<number, string>)[logger.levels.values.info as number] as string;
  return `${level}${time}${logger[chindingsSym] as string}${fields}${template.messageKey}"${message}"${logger[endSym] as string}`;
}

/** `,"key":value`, '' for an undefined value (pino leaves it out), undefined when the field must take pino's path. */
function formatField(template: Template, key: string, value: unknown): string | undefined {
  let plain = template.plainKeys.get(key);
  if (plain === undefined) {
    plain = KEY.test(key) && template.serializers[key] === undefined && template.stringifiers[key] === undefined && !(key === template.errorKey && template.serializers.err !== undefined);
    template.plainKeys.set(key, plain);
  }
  if (!plain) return undefined;
  if (value === undefined) return '';
  if (typeof value === 'number') return `,"${key}":${Number.isFinite(value) ? value : 'null'}`;
  return typeof value === 'string' && PLAIN.test(value) ? `,"${key}":"${value}"` : undefined;
}

/** The logger's template after checking that pino would write its lines as the template does; null when not. */
function templateOf(logger: PinoInternals, message: string): Template | null {
  if (typeof logger[asJsonSym] !== 'function' || typeof logger[timeSym] !== 'function' || typeof logger[chindingsSym] !== 'string') return null;
  const hooks = logger[hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined;
  const formatters = logger[formattersSym] as { log?: unknown } | undefined;
  const stringifiers = logger[stringifiersSym] as Record<string | symbol, unknown> | undefined;
  const serializers = logger[serializersSym] as Record<string, unknown> | undefined;
  const stream = logger[streamSym] as Record<symbol, unknown> & { write?: unknown };
  const messageKey = logger[messageKeySym] as string;
  if (
    logger[mixinSym] ||
    hooks?.logMethod ||
    hooks?.streamWrite ||
    msgPrefixSym === undefined ||
    logger[msgPrefixSym] !== undefined ||
    logger[nestedKeySym] ||
    formatters?.log ||
    stringifiers === undefined ||
    serializers === undefined ||
    stringifiers[wildcardFirstSym] ||
    stringifiers[messageKey] ||
    serializers[messageKey] ||
    typeof stream?.write !== 'function' ||
    stream[needsMetadataGsym] === true ||
    !PLAIN.test(messageKey)
  ) {
    return null;
  }
  const template: Template = { messageKey: `,"${messageKey}":`, plainKeys: new Map(), serializers, stringifiers: stringifiers as Record<string, unknown>, errorKey: logger[errorKeySym] as string };
  // The template against pino's own asJson, for fields of every kind the template writes.
  const sample = { sample_text: 'GET /v1/sim/intents?limit=1', sample_number: 12.5, sample_integer: 200 };
  const time = (logger[timeSym] as () => string)();
  const expected = (logger[asJsonSym] as (obj: object, msg: string, level: number, time: string) => string).call(logger, sample, message, logger.levels.values.info as number, time);
  const fields = Object.entries(sample)
    .map(([key, value]) => formatField(template, key, value))
    .join('');
  template.plainKeys.clear();
  return expected === compose(logger, template, time, fields, message) ? template : null;
}
