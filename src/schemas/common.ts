import { Type } from 'typebox';

/** Small shared schema primitives. */

export const IsoDateTime = Type.String({ format: 'date-time', description: 'ISO 8601 UTC with milliseconds' });

export const Cursor = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_]+$' });

/** An absolute http(s) URL, at most 2,048 characters. */
export const WebhookUrl = Type.String({ maxLength: 2048, format: 'uri', pattern: '^https?://[^\\s/?#]+' });

/** Visible ASCII, 1–255 characters. @see https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/ */
export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$' })),
});
