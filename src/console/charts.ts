import { html, type Html } from './html.ts';
import { GROUP_SECONDS, WINDOW_SECONDS, type SeriesWindow } from './series.ts';

/**
 * The console's charts, hand-drawn SVG (no library, no canvas): decisions per second by outcome,
 * and the webhooks' success rate and latency percentiles, over the last WINDOW_SECONDS, drawn from
 * what the recorder (src/console/series.ts) counted as it happened. Each comes with its text
 * alternative: a description, a legend naming the line styles, the latest values, and the table
 * of the window (src/console/pages/other.ts).
 * @see issue 13 "Charts"
 */

export interface Series {
  name: string;
  /** CSS class giving its colour and dash (colour is never the only difference). */
  cls: string;
  /** One value per point; null where there is nothing to show (a rate without attempts). */
  values: Array<number | null>;
}

const MINUTES = WINDOW_SECONDS / 60;

/** The three charts of a recorded window. */
export function seriesCharts(w: SeriesWindow): Html[] {
  const starts = w.groups.map((g) => g.start);
  return [
    lineChart({
      id: 'chart-decisions',
      title: `Decisions per second by outcome (last ${MINUTES} minutes, ${w.total.approved + w.total.failed} decisions)`,
      unit: '/s',
      starts: w.seconds,
      series: [
        { name: 'approved / s', cls: 'line-approved', values: w.approved },
        { name: 'failed / s', cls: 'line-failed', values: w.failed },
      ],
    }),
    lineChart({
      id: 'chart-webhook-rate',
      title: `Webhook success rate (${GROUP_SECONDS} s intervals, ${w.total.attempts} attempts)`,
      unit: '%',
      starts,
      series: [{ name: 'success %', cls: 'line-approved', values: w.groups.map((g) => (g.attempts === 0 ? null : (100 * g.succeeded) / g.attempts)) }],
      fixedMax: 100,
    }),
    lineChart({
      id: 'chart-webhook-latency',
      title: `Webhook attempt latency percentiles (${GROUP_SECONDS} s intervals)`,
      unit: 'ms',
      starts,
      series: [
        { name: 'p50 ms', cls: 'line-p50', values: w.groups.map((g) => g.p50) },
        { name: 'p95 ms', cls: 'line-p95', values: w.groups.map((g) => g.p95) },
        { name: 'p99 ms', cls: 'line-p99', values: w.groups.map((g) => g.p99) },
      ],
    }),
  ];
}

const W = 640;
const H = 220;
const PAD = { left: 48, right: 12, top: 24, bottom: 28 };

/** A nice upper bound for the y axis: 1, 2 or 5 times a power of ten. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function fmt(n: number): string {
  // Two decimals at most, without trailing zeros: 0.25 stays 0.25 (a tick at 0.3 would lie).
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(n < 10 ? 2 : 0)));
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** A line chart with its axes, a legend and a text summary; `fixedMax` pins the y axis (100 for a rate). */
export function lineChart(options: { id: string; title: string; unit: string; starts: readonly number[]; series: readonly Series[]; fixedMax?: number }): Html {
  const { id, title, unit, starts, series } = options;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const max = options.fixedMax ?? niceMax(Math.max(0, ...all));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const x = (i: number): number => PAD.left + (starts.length <= 1 ? 0 : (i * innerW) / (starts.length - 1));
  const y = (v: number): number => PAD.top + innerH - (v / max) * innerH;
  const ticks = [0, max / 2, max];
  const labelEvery = Math.max(1, Math.ceil(starts.length / 5));
  const paths = series.map((s) => {
    // A gap where a bucket has no value, rather than a line drawn through it.
    const segments: string[] = [];
    let current: string[] = [];
    s.values.forEach((v, i) => {
      if (v === null) {
        if (current.length > 0) segments.push(current.join(' '));
        current = [];
      } else current.push(`${current.length === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    if (current.length > 0) segments.push(current.join(' '));
    // A dot where a value stands alone between gaps: a point, not a line, would not show otherwise.
    const lone = (i: number): boolean => s.values[i] !== null && (s.values[i - 1] ?? null) === null && (s.values[i + 1] ?? null) === null;
    const dots = s.values.map((v, i) => (v === null || !lone(i) ? '' : html`<circle class="${s.cls}" cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="none"/>`));
    return html`<g><title>${s.name}</title>${segments.length === 0 ? '' : html`<path class="${s.cls}" d="${segments.join(' ')}" fill="none"/>`}${dots}</g>`;
  });
  const latest = series.map((s) => {
    const last = [...s.values].reverse().find((v) => v !== null);
    return `${s.name}: ${last === undefined || last === null ? 'no data' : fmt(last)}`;
  });
  return html`<figure class="chart" id="${id}">
  <figcaption>${title}</figcaption>
  <svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${id}-t ${id}-d" preserveAspectRatio="xMidYMid meet">
    <title id="${id}-t">${title}</title>
    <desc id="${id}-d">Last ${Math.round((starts.length * ((starts[1] ?? 0) - (starts[0] ?? 0))) / 60_000)} minutes (times in UTC). Latest: ${latest.join('; ')}.</desc>
    ${ticks.map((t) => html`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/><text class="axis" x="${PAD.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`)}
    ${starts.map((s, i) => (i % labelEvery === 0 ? html`<text class="axis" x="${x(i).toFixed(1)}" y="${H - 8}" text-anchor="middle">${clock(s)}</text>` : ''))}
    <text class="axis" x="${PAD.left - 6}" y="12" text-anchor="end">${unit}</text>
    <text class="axis" x="${W - PAD.right}" y="12" text-anchor="end">time (UTC)</text>
    ${paths}
  </svg>
  <ul class="chart-legend">${series.map((s) => html`<li><span class="swatch ${s.cls}" aria-hidden="true"></span>${s.name}</li>`)}</ul>
  <p class="chart-summary">Latest: ${latest.join('; ')}</p>
</figure>`;
}
