import { Type } from 'typebox';
import { NO_CONTROL_CHARACTERS_SOURCE } from '../core/text.ts';

/** Small schema primitives every dialect shares. */

export const IsoDateTime = Type.String({ format: 'date-time', description: 'ISO 8601 UTC with milliseconds' });

const ULID = '[0-9A-HJKMNP-TV-Z]{26}';

/** An id of the form `<prefix>_<ULID>`, e.g. `pay_01JD…`; a cursor of a list is the last id of the previous page. */
export const PrefixedId = (prefix: string, description = `${prefix}_<ULID>`, example?: string) =>
  Type.String({ pattern: `^${prefix}_${ULID}$`, 'x-pattern-description': `${prefix}_ followed by a 26-character ULID`, description, ...(example === undefined ? {} : { examples: [example] }) });

/**
 * A client's own reference (a native `reservation_id`, an `/api/v2` `tx_id`, a FluxPay `orderName`):
 * any text but control characters, which no reference holds and which would reach the logs, the
 * console and the run report's CSV as they are.
 */
export const CLIENT_REFERENCE = { pattern: NO_CONTROL_CHARACTERS_SOURCE, 'x-pattern-description': 'free of control characters' } as const;

/**
 * An absolute http(s) URL, at most 2,048 characters, that the URL parser the dispatcher uses
 * accepts (a port of 99999 or an octet of 999 is refused here, not when sending).
 * `http-url` is the service's own format (http/validators.ts).
 */
export const WebhookUrl = Type.String({ maxLength: 2048, format: 'http-url', description: 'Absolute http(s) URL, without spaces, control characters or backslashes' });

/** Visible ASCII, 1–255 characters. @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/ */
/** The weights of scenario `mix` on the dialects whose scenario is a header (`X-Sim-Scenario`); issue 15. */
export const SimMixHeader = Type.Object({
  'x-sim-mix': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Weighted outcomes, with `X-Sim-Scenario: mix` or without it, e.g. `approve:90,fail:7,delay:3`: each payment picks one with probability weight / total, from the seeded random stream. Default for scenario `mix`: the MIX setting',
      examples: ['approve:90,fail:7,delay:3'],
    }),
  ),
});

export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      'x-pattern-description': 'visible ASCII characters only (no spaces)',
      description: 'Makes a retry safe: the first answer is stored (IDEMPOTENCY_TTL_MS) and replayed with `Idempotent-Replayed: true`; another body with the same key is 422. Visible ASCII, 1–255 characters, e.g. a UUID.',
      examples: ['order-1001-pay'],
    }),
  ),
});
