/**
 * CSV lines as RFC 4180 writes them: fields separated by commas, lines ended by CRLF, a field
 * quoted when it holds a comma, a double quote, CR or LF, its double quotes doubled. Written here
 * rather than taken from csv-stringify: the report renders one batch of rows at a time into one
 * string, and this is all of the rule (the tests parse the output back with csv-parse, strictly).
 * @see https://www.rfc-editor.org/rfc/rfc4180#section-2
 */

export type CsvValue = string | number | boolean | null;

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(value: CsvValue): string {
  if (value === null) return '';
  const text = String(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(values: readonly CsvValue[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}
