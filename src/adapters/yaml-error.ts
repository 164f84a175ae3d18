/**
 * A YAML parse error in one line, with where it is: the `yaml` package, asked for pretty errors,
 * ends its message's first line with "at line L, column C:" and adds the text around it on the
 * lines after, which a start error's one line leaves out.
 */
export function yamlProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).replace(/:\s*$/, '');
}
