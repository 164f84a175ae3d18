/** A schema rule a validator reports (Ajv's and TypeBox's errors both have this form). */
export interface SchemaRule {
  keyword: string;
  /** The rule's parameters; ruleWords reads `type`, `limit` and `format`. */
  params?: object;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  integer: 'must be a whole number',
  number: 'must be a number',
  string: 'must be a string',
  boolean: 'must be true or false',
  array: 'must be a list (a JSON array)',
  object: 'must be an object',
};

/**
 * A schema rule in plain words (`must be a whole number`, `must be at most 65535`) where the
 * validators' own messages are terse (`must be integer`, `must be <= 65535`); undefined for the
 * other rules. Used for what an operator gave at start (settings and files); the APIs keep the
 * messages of the services they imitate.
 */
export function ruleWords(rule: SchemaRule): string | undefined {
  const params = rule.params as { type?: unknown; limit?: unknown; format?: unknown } | undefined;
  const limit = params?.limit;
  switch (rule.keyword) {
    case 'type':
      return typeof params?.type === 'string' ? TYPE_WORDS[params.type] : undefined;
    case 'minimum':
      return `must be at least ${String(limit)}`;
    case 'maximum':
      return `must be at most ${String(limit)}`;
    case 'exclusiveMinimum':
      return `must be above ${String(limit)}`;
    case 'exclusiveMaximum':
      return `must be below ${String(limit)}`;
    case 'minLength':
      return limit === 1 ? 'must not be empty' : `must be at least ${counted(limit, 'character')} long`;
    case 'maxLength':
      return `must be at most ${counted(limit, 'character')} long`;
    case 'format':
      return params?.format === 'date-time' ? 'must be an ISO 8601 date-time with its offset, such as 2026-03-01T19:00:00+09:00' : undefined;
    case 'minItems':
      return limit === 1 ? 'must not be empty' : `must hold at least ${counted(limit, 'item')}`;
    case 'maxItems':
      return `must hold at most ${counted(limit, 'item')}`;
    default:
      return undefined;
  }
}

/** `1 item`, `2 items`. */
function counted(limit: unknown, noun: string): string {
  return `${String(limit)} ${noun}${limit === 1 ? '' : 's'}`;
}
