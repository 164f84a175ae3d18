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

/**
 * The ISO 4217 minor unit where the platform's Intl (ICU's CLDR data) shows another number of
 * digits: CLDR rounds these to what is used in practice (0 for HUF, IDR, COP, PKR, IQD…), but an
 * amount the APIs hold is in ISO 4217 minor units (`amount: 12345` in HUF is 123.45 HUF). Every
 * other code takes Intl's digits (0 for KRW, JPY, KMF, XPF; 3 for BHD, KWD, JOD, OMR, TND; 2 for
 * most, and for a code Intl does not know). test/unit/console-money.test.ts checks this list
 * against Intl and ISO 4217, so a change of either shows.
 */
export const ISO_DIGITS_UNLIKE_CLDR: Readonly<Record<string, number>> = {
  AFN: 2, ALL: 2, COP: 2, HUF: 2, IDR: 2, IQD: 3, IRR: 2, KPW: 2, LAK: 2, LBP: 2, MGA: 2, MMK: 2, PKR: 2, SLL: 2, SOS: 2, SYP: 2, YER: 2,
};
/** Digits when the code is not one Intl can take (not three letters): the commonest minor unit. */
const FALLBACK_DIGITS = 2;
const digitsKnown = new Map<string, number>();
const MAX_KNOWN = 512;

/** The number of minor-unit digits of an ISO 4217 currency code. */
export function minorDigits(currency: string): number {
  const code = currency.toUpperCase();
  const known = digitsKnown.get(code);
  if (known !== undefined) return known;
  let digits = ISO_DIGITS_UNLIKE_CLDR[code];
  if (digits === undefined) {
    try {
      digits = new Intl.NumberFormat('en-US', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? FALLBACK_DIGITS;
    } catch {
      digits = FALLBACK_DIGITS; // not a well-formed code: Intl refuses it
    }
  }
  if (digitsKnown.size >= MAX_KNOWN) digitsKnown.clear();
  digitsKnown.set(code, digits);
  return digits;
}

const grouped = new Map<number, Intl.NumberFormat>();
function groupedFormat(digits: number): Intl.NumberFormat {
  let format = grouped.get(digits);
  if (format === undefined) {
    format = new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: true });
    grouped.set(digits, format);
  }
  return format;
}

/**
 * An amount in minor units (as every API holds it; KRW has none, so the Korean dialects' whole
 * won are its minor units) as the currency's major units, with thousands separators:
 * `1,234.56 USD`, `150,000 KRW`, `12.345 BHD`, `-60,000 KRW`. Exact: the decimal is built from
 * the integer's digits (Intl formats a decimal string as it is), never by dividing a float.
 */
export function money(amount: number, currency: string): string {
  return `${decimal(amount, minorDigits(currency))} ${currency}`;
}

/** A whole number with thousands separators (`12,000`): counts and credits. */
export function wholeNumber(n: number): string {
  return groupedFormat(0).format(n);
}

function decimal(amount: number, digits: number): string {
  if (!Number.isSafeInteger(amount)) return groupedFormat(digits).format(amount / 10 ** digits);
  const sign = amount < 0 ? '-' : '';
  const units = String(Math.abs(amount)).padStart(digits + 1, '0');
  const text = digits === 0 ? units : `${units.slice(0, -digits)}.${units.slice(-digits)}`;
  return groupedFormat(digits).format(`${sign}${text}` as Intl.StringNumericLiteral);
}

/** A query string from the non-empty values. */
export function query(params: Readonly<Record<string, string | undefined>>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value);
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
