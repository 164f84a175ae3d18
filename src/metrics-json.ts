import type { Registry } from 'prom-client';

/**
 * What a namespace's registry and a cluster's primary share of metrics, in a module of its own so
 * that the primary (src/cluster-metrics.ts) loads none of the app to combine its workers' metrics.
 */

/** One registry's metrics as prom-client's `getMetricsAsJSON` gives them. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The types that count: what outlives a namespace or a worker in /metrics (gauges describe state, which went with it). */
export const CUMULATIVE: ReadonlySet<string> = new Set(['counter', 'histogram']);
