/**
 * HTML built from tagged templates that escape every interpolated value: a value is text unless
 * it is already `Html` (made by this template or `raw`). Nothing from a request, a store or an
 * event can become markup by accident: a reservation id of `<img src=x onerror=alert(1)>` is
 * rendered as those characters.
 * @see issue 13 "Safety"
 */

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };
const SPECIAL = /[&<>"'`]/g;

export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

export type Value = Html | string | number | boolean | null | undefined | readonly Value[];

export function escapeHtml(text: string): string {
  return text.replace(SPECIAL, (c) => ESCAPES[c] as string);
}

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return (value as readonly Value[]).map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] as string);
  return new Html(out);
}

/** Markup this module's callers made themselves (never a value from outside). */
export function raw(text: string): Html {
  return new Html(text);
}

export function iso(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : new Date(ms).toISOString();
}

/** `12.34 EUR`; currencies without minor units (KRW, JPY) as integers. */
const ZERO_DECIMAL: ReadonlySet<string> = new Set(['KRW', 'JPY', 'VND', 'CLP', 'ISK', 'XAF', 'XOF', 'UGX', 'PYG', 'RWF']);
export function money(amount: number, currency: string): string {
  if (ZERO_DECIMAL.has(currency.toUpperCase())) return `${amount.toLocaleString('en-US')} ${currency}`;
  return `${(amount / 100).toFixed(2)} ${currency}`;
}

/** A query string from the non-empty values. */
export function query(params: Readonly<Record<string, string | undefined>>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value);
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
