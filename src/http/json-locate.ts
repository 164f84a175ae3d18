/**
 * Where JSON text breaks RFC 8259, and how, for the messages of a body that does not parse
 * (`MalformedJsonError` in ./json-body.ts) and of a YAML file's JSON (src/adapters/yaml-error.ts).
 */

/** The 1-based line and column of `position` (0-based, characters) in `text`. */
export function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < position; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: position - lineStart + 1 };
}

type Expect = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'comma-or-close' | 'end';

const EXPECTED: Record<Expect, string> = {
  value: 'a value',
  'value-or-close': "a value or ']'",
  key: 'a property name in double quotes',
  'key-or-close': "a property name in double quotes or '}'",
  colon: "':' after the property name",
  'comma-or-close': '', // depends on the container, see below
  end: 'the end of the body after the JSON value',
};

/**
 * Where JSON text first breaks RFC 8259, and how; undefined when it does not (it parses). One
 * pass with an explicit stack (no recursion, so any nesting depth is fine). Only called for a
 * body JSON.parse refused: V8's messages give no position for an unexpected token, and word
 * things differently from one version to the next.
 */
export function locateJsonError(text: string): { position: number; reason: string } | undefined {
  const n = text.length;
  const stack: string[] = [];
  let expect: Expect = 'value';
  // secure-json-parse ignores a byte order mark; so does this.
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const unexpected = (at: number, wanted: string) => ({
    position: at,
    reason: at >= n ? `Unexpected end of input (expected ${wanted})` : `Unexpected token ${shown(text, at)} (expected ${wanted})`,
  });
  const afterValue = (): Expect => (stack.length === 0 ? 'end' : 'comma-or-close');
  const closer = (): string => (stack.at(-1) === '{' ? '}' : ']');

  for (;;) {
    while (i < n && isWhitespace(text.charCodeAt(i))) i++;
    if (i >= n && expect === 'end') return undefined;
    const c = text[i];
    switch (expect) {
      case 'value':
      case 'value-or-close': {
        if (expect === 'value-or-close' && c === ']') {
          stack.pop();
          i++;
          expect = afterValue();
          break;
        }
        if (c === '{' || c === '[') {
          stack.push(c);
          i++;
          expect = c === '{' ? 'key-or-close' : 'value-or-close';
          break;
        }
        const scanned = c === '"' ? scanString(text, i) : c === '-' || isDigit(c) ? scanNumber(text, i) : c === 't' || c === 'f' || c === 'n' ? scanLiteral(text, i) : unexpected(i, EXPECTED[expect]);
        if (typeof scanned !== 'number') return scanned;
        i = scanned;
        expect = afterValue();
        break;
      }
      case 'key':
      case 'key-or-close': {
        if (expect === 'key-or-close' && c === '}') {
          stack.pop();
          i++;
          expect = afterValue();
          break;
        }
        if (c !== '"') return unexpected(i, EXPECTED[expect]);
        const scanned = scanString(text, i);
        if (typeof scanned !== 'number') return scanned;
        i = scanned;
        expect = 'colon';
        break;
      }
      case 'colon':
        if (c !== ':') return unexpected(i, EXPECTED.colon);
        i++;
        expect = 'value';
        break;
      case 'comma-or-close':
        if (c === ',') {
          i++;
          expect = stack.at(-1) === '{' ? 'key' : 'value';
        } else if (c === closer()) {
          stack.pop();
          i++;
          expect = afterValue();
        } else {
          return unexpected(i, `',' or '${closer()}'`);
        }
        break;
      case 'end':
        return unexpected(i, EXPECTED.end);
    }
  }
}

/** The end of the string starting at `start` (a `"`), or what is wrong with it. */
function scanString(text: string, start: number): number | { position: number; reason: string } {
  const n = text.length;
  let i = start + 1;
  while (i < n) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return { position: i, reason: `Bad control character ${shown(text, i)} in string (escape it)` };
    if (code !== 0x5c) {
      i++;
      continue;
    }
    const escaped = text[i + 1];
    if (escaped === undefined) break;
    if ('"\\/bfnrt'.includes(escaped)) {
      i += 2;
    } else if (escaped === 'u') {
      for (let k = i + 2; k < i + 6; k++) {
        if (k >= n) return { position: n, reason: 'Unexpected end of input in a \\u escape (expected 4 hex digits)' };
        if (!/[0-9a-fA-F]/.test(text[k]!)) return { position: k, reason: `Bad Unicode escape: ${shown(text, k)} is not a hex digit` };
      }
      i += 6;
    } else {
      return { position: i + 1, reason: `Bad escape \\${escaped} in string` };
    }
  }
  return { position: n, reason: 'Unterminated string (expected a closing ")' };
}

/** The end of the number starting at `start`, or where it breaks. */
function scanNumber(text: string, start: number): number | { position: number; reason: string } {
  let i = start;
  const digits = (what: string): { position: number; reason: string } | undefined => {
    if (!isDigit(text[i])) return { position: i, reason: i >= text.length ? `Unexpected end of input (expected ${what})` : `Unexpected token ${shown(text, i)} (expected ${what})` };
    while (isDigit(text[i])) i++;
    return undefined;
  };
  if (text[i] === '-') i++;
  if (text[i] === '0') i++;
  else {
    const bad = digits('a digit');
    if (bad !== undefined) return bad;
  }
  if (text[i] === '.') {
    i++;
    const bad = digits('a digit after the decimal point');
    if (bad !== undefined) return bad;
  }
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    const bad = digits('a digit in the exponent');
    if (bad !== undefined) return bad;
  }
  return i;
}

/** The end of `true`, `false` or `null` starting at `start`, or where the word goes wrong. */
function scanLiteral(text: string, start: number): number | { position: number; reason: string } {
  const word = text[start] === 't' ? 'true' : text[start] === 'f' ? 'false' : 'null';
  for (let k = 1; k < word.length; k++) {
    const at = start + k;
    if (text[at] !== word[k]) {
      return { position: at, reason: at >= text.length ? `Unexpected end of input (expected ${word})` : `Unexpected token ${shown(text, at)} (expected ${word})` };
    }
  }
  return start + word.length;
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** The character at `i` as a reader sees it: itself, or U+XXXX when it is invisible. */
function shown(text: string, i: number): string {
  const code = text.codePointAt(i)!;
  if (code < 0x20 || code === 0x7f || code === 0xfeff || (code >= 0x80 && code < 0xa0)) return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return String.fromCodePoint(code);
}
