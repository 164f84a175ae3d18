/**
 * ISO 4217 currency codes, as Node's ICU knows them (`Intl.supportedValuesOf('currency')`: the
 * codes in use, without the test and precious-metal codes such as XTS or XAU). Before 2026-12-05
 * any three upper-case letters were taken (`XYZ` made a payment), where a real gateway refuses an
 * unknown currency.
 */
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** Whether `code` is an ISO 4217 currency code in use (upper-case, as the standard writes them). */
export function isCurrency(code: string): boolean {
  return CURRENCIES.has(code);
}
