import { describe, expect, it } from 'vitest';
import { ISO_DIGITS_UNLIKE_CLDR, minorDigits, money, wholeNumber } from '../../src/console/html.ts';

/**
 * The console's amounts: minor units (what every API holds) shown in the currency's major units
 * with its ISO 4217 minor unit and thousands separators.
 */

/** ISO 4217's currencies whose minor unit is not 2 (the list as of 2024; funds codes included). */
const ISO_ZERO = ['BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'];
const ISO_THREE = ['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'];
const ISO_FOUR = ['CLF', 'UYW'];
const isoDigits = (code: string): number => (ISO_ZERO.includes(code) ? 0 : ISO_THREE.includes(code) ? 3 : ISO_FOUR.includes(code) ? 4 : 2);

describe('console money', () => {
  it('shows minor units in major units with the currency’s ISO 4217 digits and thousands separators', () => {
    expect(money(150000, 'KRW')).toBe('150,000 KRW');
    expect(money(1234567, 'JPY')).toBe('1,234,567 JPY');
    expect(money(12345678, 'USD')).toBe('123,456.78 USD');
    expect(money(100, 'EUR')).toBe('1.00 EUR');
    expect(money(12345, 'BHD')).toBe('12.345 BHD');
    expect(money(123456789, 'KWD')).toBe('123,456.789 KWD');
    expect(money(5, 'KWD')).toBe('0.005 KWD');
    expect(money(1000, 'KMF')).toBe('1,000 KMF');
    expect(money(1000, 'XPF')).toBe('1,000 XPF');
    // ICU shows these with fewer digits than ISO 4217 gives them; an amount is in ISO minor units.
    expect(money(12345, 'HUF')).toBe('123.45 HUF');
    expect(money(12345, 'IQD')).toBe('12.345 IQD');
    // Negative (a ledger balance), and the largest amount the APIs take, exactly.
    expect(money(-60000, 'KRW')).toBe('-60,000 KRW');
    expect(money(-5, 'USD')).toBe('-0.05 USD');
    expect(money(100_000_000_000, 'KWD')).toBe('100,000,000.000 KWD');
    expect(money(100_000_000_000, 'USD')).toBe('1,000,000,000.00 USD');
  });

  it('takes 2 digits for a code Intl does not know, or one it cannot take', () => {
    expect(money(12345, 'QQQ')).toBe('123.45 QQQ');
    expect(money(12345, 'CREDIT')).toBe('123.45 CREDIT');
    expect(minorDigits('qqq')).toBe(2);
  });

  it('has ISO 4217’s minor unit for every currency Intl knows (its own digits, or the correction where ICU differs)', () => {
    const codes = Intl.supportedValuesOf('currency');
    expect(codes.length).toBeGreaterThan(150);
    expect(codes.filter((code) => minorDigits(code) !== isoDigits(code))).toEqual([]);
    // Each correction is still needed: Intl itself gives another number of digits.
    const intlDigits = (code: string): number | undefined => new Intl.NumberFormat('en-US', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits;
    expect(Object.keys(ISO_DIGITS_UNLIKE_CLDR).filter((code) => intlDigits(code) === ISO_DIGITS_UNLIKE_CLDR[code])).toEqual([]);
  });

  it('groups whole numbers (credits, counts)', () => {
    expect([wholeNumber(0), wholeNumber(999), wholeNumber(12000), wholeNumber(-1234567)]).toEqual(['0', '999', '12,000', '-1,234,567']);
  });
});
