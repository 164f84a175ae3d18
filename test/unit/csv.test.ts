import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvField, csvLine } from '../../src/http/csv.ts';

/** RFC 4180 quoting of the run report's CSV (src/http/csv.ts), read back by csv-parse. */

describe('csvField / csvLine', () => {
  it('quotes exactly the fields that need it and doubles their quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    expect(csvField('cr\ronly')).toBe('"cr\ronly"');
    expect(csvField('lf\nonly')).toBe('"lf\nonly"');
    expect(csvField(null)).toBe('');
    expect(csvField(0)).toBe('0');
    expect(csvField(false)).toBe('false');
    expect(csvField(' spaced ')).toBe(' spaced ');
    expect(csvLine(['a', 1, null, true])).toBe('a,1,,true\r\n');
  });

  it('writes a text field a spreadsheet would run as a formula with a leading apostrophe; numbers and other text as they are', () => {
    expect(['=1+1', '+41 22', '-x', '@SUM(A1)', '\tlead', '\rlead', '=HYPERLINK("http://127.0.0.1/x","y")'].map(csvField)).toEqual([
      "'=1+1",
      "'+41 22",
      "'-x",
      "'@SUM(A1)",
      "'\tlead",
      `"'\rlead"`,
      `"'=HYPERLINK(""http://127.0.0.1/x"",""y"")"`,
    ]);
    expect([-5, 0, 'a=b', 'x-1', "'quoted"].map(csvField)).toEqual(['-5', '0', 'a=b', 'x-1', "'quoted"]);
  });

  it('lines read back field for field by a strict parser', () => {
    const rows = [
      ['id', 'reference', 'note'],
      ['pay_1', 'rsv, "quoted"', 'multi\r\nline'],
      ['pay_2', '', '"'],
      ['pay_3', '=1+1', 'ü — 한국'],
    ];
    const text = rows.map((r) => csvLine(r)).join('');
    expect(parse(text, { relax_quotes: false, relax_column_count: false, record_delimiter: '\r\n' })).toEqual(rows.map((r) => r.map((v) => (v === '=1+1' ? "'=1+1" : v))));
  });
});
