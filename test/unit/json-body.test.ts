import { describe, expect, it } from 'vitest';
import { isUtf8 } from 'node:buffer';
import { locateJsonError } from '../../src/http/json-locate.ts';
import { charsetOf, firstInvalidUtf8, loneSurrogate, MalformedJsonError, MAX_JSON_DEPTH, parseJsonBody, tooDeep, UnreadableBodyError } from '../../src/http/json-body.ts';

/**
 * Malformed JSON says where it broke: position (0-based), line and column (1-based) and what
 * was expected there. The locator agrees with JSON.parse on what is valid, and with V8 on the
 * position wherever V8's message gives one.
 * @see issue 8 "Small things that cost a newcomer time"
 */

function messageOf(text: string): string | undefined {
  const found = locateJsonError(text);
  return found === undefined ? undefined : new MalformedJsonError(text, found.position, found.reason).message;
}

describe('where malformed JSON broke', () => {
  it.each([
    ['{"amount": 1,}', "Malformed JSON at position 13 (line 1, column 14): Unexpected token } (expected a property name in double quotes)"],
    ['{"amount": 1,', 'Malformed JSON at position 13 (line 1, column 14): Unexpected end of input (expected a property name in double quotes)'],
    ['{"bookingId"', "Malformed JSON at position 12 (line 1, column 13): Unexpected end of input (expected ':' after the property name)"],
    ['{\n  "a": 1\n  "b": 2\n}', "Malformed JSON at position 13 (line 3, column 3): Unexpected token \" (expected ',' or '}')"],
    ['{\r\n  "a": [1 2]\r\n}', "Malformed JSON at position 13 (line 2, column 11): Unexpected token 2 (expected ',' or ']')"],
    ['{a: 1}', "Malformed JSON at position 1 (line 1, column 2): Unexpected token a (expected a property name in double quotes or '}')"],
    ["{'a': 1}", "Malformed JSON at position 1 (line 1, column 2): Unexpected token ' (expected a property name in double quotes or '}')"],
    ['{"a": tru}', 'Malformed JSON at position 9 (line 1, column 10): Unexpected token } (expected true)'],
    ['{"a": undefined}', 'Malformed JSON at position 6 (line 1, column 7): Unexpected token u (expected a value)'],
    ['{"a": "x\u0001"}', 'Malformed JSON at position 8 (line 1, column 9): Bad control character U+0001 in string (escape it)'],
    ['{"a": "\\x"}', 'Malformed JSON at position 8 (line 1, column 9): Bad escape \\x in string'],
    ['"\\u12G4"', 'Malformed JSON at position 5 (line 1, column 6): Bad Unicode escape: G is not a hex digit'],
    ['{"a": "open', 'Malformed JSON at position 11 (line 1, column 12): Unterminated string (expected a closing ")'],
    ['{"a": -}', 'Malformed JSON at position 7 (line 1, column 8): Unexpected token } (expected a digit)'],
    ['{"a": 1.}', 'Malformed JSON at position 8 (line 1, column 9): Unexpected token } (expected a digit after the decimal point)'],
    ['[1, 2] 3', 'Malformed JSON at position 7 (line 1, column 8): Unexpected token 3 (expected the end of the body after the JSON value)'],
    ['   \n\n   \t       ', 'Malformed JSON at position 16 (line 3, column 12): Unexpected end of input (expected a value)'],
    ['\uFEFF{]', "Malformed JSON at position 2 (line 1, column 3): Unexpected token ] (expected a property name in double quotes or '}')"],
    ['{"k": "가"]', "Malformed JSON at position 9 (line 1, column 10): Unexpected token ] (expected ',' or '}')"],
  ])('%j', (text, message) => {
    expect(messageOf(text)).toBe(message);
  });

  it('valid JSON has no error, whatever its nesting', () => {
    for (const text of ['{}', '[]', '0', '-0.5e-3', '"\\u00e9\\n"', ' {"a": [true, false, null, {"b": ""}]} ', '\uFEFF[1]', `${'['.repeat(100_000)}${']'.repeat(100_000)}`]) {
      expect(locateJsonError(text), text.slice(0, 40)).toBeUndefined();
    }
    expect(messageOf('['.repeat(100_000))).toBe("Malformed JSON at position 100000 (line 1, column 100001): Unexpected end of input (expected a value or ']')");
  });

  it('agrees with JSON.parse on 20,000 mutated documents, and with V8 on the position wherever V8 names one', () => {
    let seed = 8;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const docs = ['{"reservation_id": "r", "amount": 1, "metadata": {"a": "b\\n\\u00e9"}, "x": [1, -2.5e+3, true, false, null, {}]}', '{\n  "a": 1,\n  "b": [true]\n}', '[[[["x"]]]]', '-0.1E5'];
    const chars = ['{', '}', '[', ']', ',', ':', '"', '\\', 'a', '1', '0', '-', '.', 'e', 't', 'n', 'u', ' ', '\n', '\u0001', 'é'];
    let positions = 0;
    for (let k = 0; k < 20_000; k++) {
      let text = docs[Math.floor(random() * docs.length)]!;
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) {
        const at = Math.floor(random() * (text.length + 1));
        const op = random();
        const char = chars[Math.floor(random() * chars.length)]!;
        text = op < 1 / 3 ? text.slice(0, at) + text.slice(at + 1) : op < 2 / 3 ? text.slice(0, at) + char + text.slice(at) : text.slice(0, at) + char + text.slice(at + 1);
      }
      let v8: string | undefined;
      try {
        JSON.parse(text);
      } catch (error) {
        v8 = (error as Error).message;
      }
      const found = locateJsonError(text);
      expect(found === undefined, `${JSON.stringify(text)}: JSON.parse says ${v8 ?? 'valid'}`).toBe(v8 === undefined);
      const at = v8 === undefined ? null : /at position (\d+)/.exec(v8);
      if (at?.[1] !== undefined) {
        positions++;
        expect(found?.position, JSON.stringify(text)).toBe(Number(at[1]));
      }
    }
    expect(positions).toBeGreaterThan(1000);
  });
});

describe('lone surrogates (found by the fuzzer: a 500 from the idempotency fingerprint)', () => {
  it.each([
    ['{"cvv": "\\udc00x"}', 9, 'Lone surrogate \\udc00 in a string (a low surrogate without a high one before it is not Unicode text)'],
    ['{"a": "\\ud800"}', 7, 'Lone surrogate \\ud800 in a string (a high surrogate must be followed by a low one)'],
    ['["\\uD83D\\n"]', 2, 'Lone surrogate \\uD83D in a string (a high surrogate must be followed by a low one)'],
    ['["\\ud83d\\ude00", "\\ud800x"]', 18, 'Lone surrogate \\ud800 in a string (a high surrogate must be followed by a low one)'],
    ['{"\\udfff": 1}', 2, 'Lone surrogate \\udfff in a string (a low surrogate without a high one before it is not Unicode text)'],
  ])('%s → at %i', (text, position, reason) => {
    expect(loneSurrogate(text)).toEqual({ position, reason });
  });

  it.each([['{"emoji": "\\ud83d\\ude00"}'], ['{"a": "\\\\ud800"}'], ['{"a": "😀 \\u00e9"}'], ['{}']])('%s is Unicode text', (text) => {
    expect(loneSurrogate(text)).toBeUndefined();
  });
});

describe('how deep a body may nest (2026-12-05, a security review: a 10 KB `[[[…]]]` in FluxPay metadata made an order nothing could serialize)', () => {
  const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

  it('finds where the limit is passed; strings, escaped quotes and brackets in them are skipped', () => {
    expect(tooDeep(nested(3), 3)).toBeUndefined();
    expect(tooDeep(nested(4), 3)).toBe(3);
    expect(tooDeep('{"a":{"b":[{}]}}', 3)).toBe(11);
    expect(tooDeep('{"a":"[[[[[[","b":"\\"}', 1)).toBeUndefined();
    expect(tooDeep('{"a":"\\"[[","b":[[1]]}', 3)).toBeUndefined();
    expect(tooDeep('{"a":"\\"","b":[[1]]}', 2)).toBe(15);
    // A text no longer than the limit is not scanned: it cannot pass it.
    expect(tooDeep('[[[]]]', 6)).toBeUndefined();
  });

  it('the parser takes 64 levels and refuses 65 with where, as malformed JSON is refused', () => {
    const parse = (text: string) =>
      new Promise<{ error: Error | null; value: unknown }>((resolve) => parseJsonBody({ headers: {} }, text, (error, value) => resolve({ error, value })));
    return Promise.all([parse(`{"metadata":${nested(MAX_JSON_DEPTH - 1)}}`), parse(`{"metadata":${nested(MAX_JSON_DEPTH)}}`), parse(nested(5_000))]).then(([ok, deep, deeper]) => {
      expect(ok.error).toBeNull();
      expect(deep.error).toBeInstanceOf(MalformedJsonError);
      expect(deep.error!.message).toBe('JSON nested too deeply at position 75 (line 1, column 76): more than 64 arrays and objects inside one another');
      expect((deep.error as MalformedJsonError).kind).toBe('too_deep');
      expect(deeper.error!.message).toMatch(/^JSON nested too deeply at position 64 /);
    });
  });
});

describe('bodies that are not UTF-8, or in another charset (2026-12-05, a user test: Latin-1 ids read as U+FFFD, two ids one)', () => {
  const parse = (body: Buffer, contentType = 'application/json') =>
    new Promise<{ error: Error | null; value: unknown }>((resolve) => parseJsonBody({ headers: { 'content-type': contentType } }, body, (error, value) => resolve({ error, value })));

  it('firstInvalidUtf8 agrees with Node’s isUtf8 on 20,000 random byte strings, and points at a byte where decoding breaks', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let n = 0; n < 20_000; n++) {
      // Mostly well-formed text with a few random bytes in it, so that both answers occur.
      const bytes = Buffer.concat([Buffer.from('{"a":"é€😀'), Buffer.from(Array.from({ length: n % 6 }, next)), Buffer.from('"}')]);
      const at = firstInvalidUtf8(bytes);
      expect([n, at === bytes.length]).toEqual([n, isUtf8(bytes)]);
      if (at < bytes.length) expect(isUtf8(bytes.subarray(0, at))).toBe(true);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8], [0x80], [0xe2, 0x82]]) {
      expect([bad, firstInvalidUtf8(Buffer.from([0x41, ...bad]))]).toEqual([bad, 1]);
    }
  });

  it('a byte that is not UTF-8 is malformed JSON at the character before which it stands; UTF-8 is read', async () => {
    const broken = await parse(Buffer.concat([Buffer.from('{"id":"é'), Buffer.from([0xe9]), Buffer.from('"}')]));
    expect(broken.error).toBeInstanceOf(MalformedJsonError);
    expect(broken.error?.message).toBe('Malformed JSON at position 8 (line 1, column 9): Invalid UTF-8 (byte 0xE9): a JSON body is UTF-8 text');
    expect(await parse(Buffer.from('{"id":"é"}'))).toEqual({ error: null, value: { id: 'é' } });
  });

  it('a UTF-16 or UTF-32 charset is a 415 naming it; any other is not read (RFC 8259), the body being UTF-8', async () => {
    for (const type of ['application/json; charset=utf-16', 'application/json;charset="UTF-16BE"', 'application/json; charset=utf32', 'application/json; charset=UCS-2']) {
      const refused = await parse(Buffer.from('{}'), type);
      expect([type, refused.error]).toEqual([type, expect.any(UnreadableBodyError)]);
    }
    for (const type of ['application/json; charset=utf-8', 'application/json; Charset="UTF-8"', 'application/json;charset=utf8', 'application/json', 'application/json; foo=bar', 'application/json; charset=latin1', 'application/json;charset="ISO-8859-1"', 'application/json; charset=']) {
      expect([type, await parse(Buffer.from('{}'), type)]).toEqual([type, { error: null, value: {} }]);
    }
    expect([charsetOf(undefined), charsetOf('application/json'), charsetOf('application/json; charset = "Latin1" ; q=1')]).toEqual([undefined, undefined, 'latin1']);
  });
});
