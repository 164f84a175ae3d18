import { REPORT_DIALECTS, REPORT_STATUSES, type DeliverySummary, type ReportDialect, type ReportRow } from './rows.ts';

/**
 * The totals of a run report, added up row by row as the rows stream out, so the report never
 * holds its rows: per dialect and status, approved amounts per currency, deliveries by outcome.
 * Every dialect and every status of it is present, 0 when nothing is in it, so a CI job reads
 * `by_dialect.native.by_status.FAILED` without checking that it exists.
 * @see issue 15 "Load-test controls"
 */

export interface ReportTotals {
  payments: number;
  /** Per dialect: how many payments, and how many in each final state (in the dialect's order of states). */
  byDialect: Record<ReportDialect, { payments: number; byStatus: Record<string, number> }>;
  /** Per currency (sorted by code): the amounts of approved payments (refunds not subtracted). */
  approvedAmounts: Record<string, number>;
  deliveries: Omit<DeliverySummary, 'lastStatusCode'>;
}

export class TotalsAccumulator {
  readonly #totals: ReportTotals = {
    payments: 0,
    byDialect: Object.fromEntries(REPORT_DIALECTS.map((d) => [d, { payments: 0, byStatus: Object.fromEntries(REPORT_STATUSES[d].map((s) => [s, 0])) }])) as ReportTotals['byDialect'],
    approvedAmounts: {},
    deliveries: { count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0 },
  };

  add(row: ReportRow): void {
    const t = this.#totals;
    t.payments++;
    const dialect = t.byDialect[row.dialect];
    dialect.payments++;
    dialect.byStatus[row.status] = (dialect.byStatus[row.status] ?? 0) + 1;
    if (row.approved) t.approvedAmounts[row.currency] = (t.approvedAmounts[row.currency] ?? 0) + row.amount;
    const d = t.deliveries;
    d.count += row.deliveries.count;
    d.delivered += row.deliveries.delivered;
    d.failed += row.deliveries.failed;
    d.pending += row.deliveries.pending;
    d.attempts += row.deliveries.attempts;
  }

  /** The totals so far (a copy), currencies sorted, so two runs compare equal. */
  result(): ReportTotals {
    const t = this.#totals;
    const byDialect = Object.fromEntries(Object.entries(t.byDialect).map(([dialect, entry]) => [dialect, { payments: entry.payments, byStatus: { ...entry.byStatus } }])) as ReportTotals['byDialect'];
    const approvedAmounts = Object.fromEntries(Object.entries(t.approvedAmounts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { payments: t.payments, byDialect, approvedAmounts, deliveries: { ...t.deliveries } };
  }
}
