import { MalformedJsonError } from '../http/json-body.ts';
import { locateJsonError } from '../http/json-locate.ts';

/**
 * A YAML parse error in one line, with where it is: the `yaml` package, asked for pretty errors,
 * ends its message's first line with "at line L, column C:" and adds the text around it on the
 * lines after, which a start error's one line leaves out.
 */
export function yamlProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/:\s*$/, '');
}

/**
 * A JSON file's parse error in one line: what broke and where (`Unexpected token W (expected a
 * value) at line 1, column 1`), never the text around it, which V8's message quotes (a settings
 * file named by mistake, such as an `.env`, would have its first characters printed).
 */
export function jsonProblem(text: string): string {
  const found = locateJsonError(text);
  if (found === undefined) return 'not valid JSON';
  const { line, column, reason } = new MalformedJsonError(text, found.position, found.reason);
  return `${reason} at line ${line}, column ${column}`;
}
