/**
 * CSV lines as RFC 4180 writes them: fields separated by commas, lines ended by CRLF, a field
 * quoted when it holds a comma, a double quote, CR or LF, its double quotes doubled; a text field
 * that would start a formula neutralised. Written here
 * rather than taken from csv-stringify: the report renders one batch of rows at a time into one
 * string, and this is all of the rule (the tests parse the output back with csv-parse, strictly).
 * @see https://www.rfc-editor.org/rfc/rfc4180#section-2
 */

export type CsvValue = string | number | boolean | null;

const NEEDS_QUOTES = /[",\r\n]/;
/** What a spreadsheet takes for the start of a formula (OWASP's CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One field. A text value a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+1`, `@SUM(…)`,
 * from a client's reference) is written with a leading `'`, which spreadsheets show as text;
 * numbers are written as they are.
 * @see https://owasp.org/www-community/attacks/CSV_Injection
 */
export function csvField(value: CsvValue): string {
  if (value === null) return '';
  const text = typeof value === 'string' && FORMULA_START.test(value) ? `'${value}` : String(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(values: readonly CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}
