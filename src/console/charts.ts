import type { Delivery } from '../core/deliveries.ts';
import type { DeliveryLogStore } from '../core/ports.ts';
import { html, type Html } from './html.ts';
import type { Decision } from './sources.ts';

/**
 * The console's charts, hand-drawn SVG (no library, no canvas): decisions per second by outcome,
 * and the webhooks' success rate and latency percentiles, over the last minutes. Computed when a
 * page asks, from what the stores hold (each intent's, payment's and booking's decision time; each
 * delivery attempt's time, status and duration), so nothing is recorded while nobody looks.
 * @see issue 13 "Charts"
 */

export const WINDOW_MS = 5 * 60_000;
export const DECISION_BUCKET_MS = 10_000;
export const WEBHOOK_BUCKET_MS = 30_000;
/** At most this many deliveries are read for the webhook chart (newest first). */
export const MAX_DELIVERIES_SCANNED = 5000;

export interface Series {
  name: string;
  /** CSS class giving its colour and dash (colour is never the only difference). */
  cls: string;
  /** One value per bucket; null where there is nothing to show. */
  values: Array<number | null>;
}

export function bucketStarts(now: number, windowMs: number, bucketMs: number): number[] {
  const end = Math.floor(now / bucketMs) * bucketMs + bucketMs;
  const count = Math.ceil(windowMs / bucketMs);
  return Array.from({ length: count }, (_, i) => end - (count - i) * bucketMs);
}

/** Decisions per second in each bucket, approved and failed. */
export function decisionSeries(decisions: readonly Decision[], now: number): { starts: number[]; series: Series[] } {
  const starts = bucketStarts(now, WINDOW_MS, DECISION_BUCKET_MS);
  const first = starts[0] as number;
  const approved = starts.map(() => 0);
  const failed = starts.map(() => 0);
  for (const d of decisions) {
    const i = Math.floor((d.at - first) / DECISION_BUCKET_MS);
    if (i < 0 || i >= starts.length) continue;
    if (d.outcome === 'approved') approved[i] = (approved[i] as number) + 1;
    else failed[i] = (failed[i] as number) + 1;
  }
  const perSecond = (n: number): number => n / (DECISION_BUCKET_MS / 1000);
  return {
    starts,
    series: [
      { name: 'approved / s', cls: 'line-approved', values: approved.map(perSecond) },
      { name: 'failed / s', cls: 'line-failed', values: failed.map(perSecond) },
    ],
  };
}

/** The p-th percentile (0–100) of sorted values, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

export async function recentDeliveries(log: DeliveryLogStore, since: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  let cursor: string | undefined;
  while (out.length < MAX_DELIVERIES_SCANNED) {
    const page = await log.list({ limit: 500, cursor });
    for (const d of page.data) if (d.updatedAt >= since) out.push(d);
    if (page.nextCursor === null) break;
    cursor = page.nextCursor;
  }
  return out;
}

/** Success rate (% of attempts answered 2xx) and p50/p95/p99 attempt latency (ms) per bucket. */
export function webhookSeries(deliveries: readonly Delivery[], now: number): { starts: number[]; rate: Series[]; latency: Series[]; attempts: number } {
  const starts = bucketStarts(now, WINDOW_MS, WEBHOOK_BUCKET_MS);
  const first = starts[0] as number;
  const ok = starts.map(() => 0);
  const durations: number[][] = starts.map(() => []);
  let attempts = 0;
  for (const d of deliveries) {
    for (const a of d.attempts) {
      const i = Math.floor((a.at - first) / WEBHOOK_BUCKET_MS);
      if (i < 0 || i >= starts.length) continue;
      attempts++;
      (durations[i] as number[]).push(a.durationMs);
      if (a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300) ok[i] = (ok[i] as number) + 1;
    }
  }
  for (const list of durations) list.sort((x, y) => x - y);
  const rate = durations.map((list, i) => (list.length === 0 ? null : (100 * (ok[i] as number)) / list.length));
  return {
    starts,
    attempts,
    rate: [{ name: 'success %', cls: 'line-approved', values: rate }],
    latency: [
      { name: 'p50 ms', cls: 'line-p50', values: durations.map((l) => percentile(l, 50)) },
      { name: 'p95 ms', cls: 'line-p95', values: durations.map((l) => percentile(l, 95)) },
      { name: 'p99 ms', cls: 'line-p99', values: durations.map((l) => percentile(l, 99)) },
    ],
  };
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
    // A dot on every point: a lone value between gaps is a point, not a line.
    const dots = s.values.map((v, i) => (v === null ? '' : html`<circle class="${s.cls}" cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="none"/>`));
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
    <desc id="${id}-d">Last ${Math.round((starts.length * ((starts[1] ?? 0) - (starts[0] ?? 0))) / 60_000)} minutes. Latest: ${latest.join('; ')}.</desc>
    ${ticks.map((t) => html`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/><text class="axis" x="${PAD.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`)}
    ${starts.map((s, i) => (i % labelEvery === 0 ? html`<text class="axis" x="${x(i).toFixed(1)}" y="${H - 8}" text-anchor="middle">${clock(s)}</text>` : ''))}
    <text class="axis" x="${PAD.left - 6}" y="12" text-anchor="end">${unit}</text>
    ${paths}
  </svg>
  <ul class="chart-legend">${series.map((s) => html`<li><span class="swatch ${s.cls}" aria-hidden="true"></span>${s.name}</li>`)}</ul>
  <p class="chart-summary">Latest: ${latest.join('; ')}</p>
</figure>`;
}
