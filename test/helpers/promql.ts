/**
 * Just enough of PromQL and of the Prometheus text format to compare the queries of a dashboard
 * or an alert file with what a service really exports: which series names and which label names
 * a query uses, and which series (with their label names) a /metrics body holds.
 * Not a parser: it reads the selectors, matchers and grouping clauses that queries are made of.
 * @see https://prometheus.io/docs/prometheus/latest/querying/basics/
 */

/** Words of PromQL that are not series names. Functions and aggregations are told by their `(`. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const MATCHERS = /\{([^}]*)\}/g;
const MATCHER_LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g;
const IDENTIFIER = /[a-zA-Z_:][a-zA-Z0-9_:]*/g;

export interface QueryNames {
  /** Series names selected, e.g. `http_request_duration_seconds_bucket`. */
  series: Set<string>;
  /** Label names in matchers and in by/without/on/ignoring/group_* clauses. */
  labels: Set<string>;
}

export function queryNames(expr: string): QueryNames {
  const labels = new Set<string>();
  // Strings first (a label value may hold braces or words), then what holds label names.
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  rest = rest.replace(MATCHERS, (_all, body: string) => {
    for (const m of body.matchAll(MATCHER_LABEL)) labels.add(m[1] as string);
    return ' ';
  });
  rest = rest.replace(GROUPING, (_all, list: string) => {
    for (const name of list.split(',')) if (name.trim() !== '') labels.add(name.trim());
    return ' ';
  });
  // Range and subquery durations ([5m], [$__rate_interval], [1h:5m]), offsets (offset 10m, offset -1h30m) and numbers (1e-9, 0.99).
  rest = rest.replace(/\[[^\]]*\]/g, ' ').replace(/\boffset\s+-?(?:\d+(?:ms|[smhdwy]))+/gi, ' ').replace(/(?<![a-zA-Z0-9_:])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, ' ');
  const series = new Set<string>();
  for (const m of rest.matchAll(IDENTIFIER)) {
    const name = m[0];
    const after = rest.slice((m.index ?? 0) + name.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(name.toLowerCase())) continue;
    series.add(name);
  }
  return { series, labels };
}

/** Every series name in a Prometheus text body, with the label names seen on it. */
export function exportedSeries(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s/.exec(line);
    if (m === null) continue;
    const names = out.get(m[1] as string) ?? new Set<string>();
    for (const label of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) names.add(label[1] as string);
    out.set(m[1] as string, names);
  }
  return out;
}

/** Aggregation operators, which may be followed by `by (…)` or `without (…)` before their `(`. */
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const STRING_SOURCE = String.raw`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + '`[^`]*`';
/** A selector's matchers, each `label op value`, the value in any of PromQL's three quotes. */
const MATCHER = new RegExp(String.raw`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(${STRING_SOURCE})`, 'g');
/**
 * What a query is made of, left to right: strings, range and subquery durations and grouping clauses
 * (no selector in them), and selectors: a name with or without braces (whose strings may hold
 * braces and commas), or braces alone (`{__name__="…"}`).
 */
const PARTS = new RegExp(
  String.raw`${STRING_SOURCE}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|(?<![a-zA-Z0-9_:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)?(\s*\{(?:${STRING_SOURCE}|[^}"'` + '`' + String.raw`])*\})?`,
  'gi',
);

/**
 * Every series selector of a query: its name ('' for braces alone) and its matchers, each written
 * `label op "value"` whatever the quotes and spaces of the query (`job="paysim"`, `status_code=~"5.."`).
 */
export function seriesSelectors(expr: string): Array<{ name: string; matchers: string[] }> {
  const found: Array<{ name: string; matchers: string[] }> = [];
  for (const m of expr.matchAll(PARTS)) {
    const [text, name, braces] = m;
    if (name === undefined && braces === undefined) continue;
    if (braces === undefined) {
      const after = expr.slice((m.index ?? 0) + text.length).trimStart();
      if (after.startsWith('(') || KEYWORDS.has((name as string).toLowerCase()) || AGGREGATIONS.has((name as string).toLowerCase())) continue;
    }
    const matchers = [...(braces ?? '').matchAll(MATCHER)].map(([, label, op, value]) => `${label}${op}"${(value as string).slice(1, -1)}"`);
    found.push({ name: name ?? '', matchers });
  }
  return found;
}
