import type { DeliverySummary, ReportDialect, ReportRow } from './rows.ts';

/**
 * The totals of a run report, added up row by row as the rows stream out, so the report never
 * holds its rows: per dialect and status, approved amounts per currency, deliveries by outcome.
 * @see issue 15 "Load-test controls"
 */

export interface ReportTotals {
  payments: number;
  /** Per dialect that had payments: how many, and how many in each final state. */
  byDialect: Partial<Record<ReportDialect, { payments: number; byStatus: Record<string, number> }>>;
  /** Per currency: the amounts of approved payments (refunds not subtracted). */
  approvedAmounts: Record<string, number>;
  deliveries: Omit<DeliverySummary, 'lastStatusCode'>;
}

export class TotalsAccumulator {
  readonly #totals: ReportTotals = { payments: 0, byDialect: {}, approvedAmounts: {}, deliveries: { count: 0, delivered: 0, failed: 0, pending: 0, attempts: 0 } };

  add(row: ReportRow): void {
    const t = this.#totals;
    t.payments++;
    const dialect = (t.byDialect[row.dialect] ??= { payments: 0, byStatus: {} });
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

  /** The totals so far, with keys in a stable order (status and currency names sorted), so two runs compare equal. */
  result(): ReportTotals {
    const t = this.#totals;
    const byDialect: ReportTotals['byDialect'] = {};
    for (const [dialect, entry] of Object.entries(t.byDialect)) byDialect[dialect as ReportDialect] = { payments: entry.payments, byStatus: sorted(entry.byStatus) };
    return { payments: t.payments, byDialect, approvedAmounts: sorted(t.approvedAmounts), deliveries: { ...t.deliveries } };
  }
}

function sorted(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
