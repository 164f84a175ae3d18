import type { ReportRow } from '../../core/report/rows.ts';
import type { ReportTotals } from '../../core/report/totals.ts';
import type { CsvValue } from '../../http/csv.ts';

/**
 * The run report's rows and totals on the wire: snake_case JSON (report-schemas.ts), and the CSV
 * columns, one row per payment with the deliveries' figures flattened.
 */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function reportRowView(row: ReportRow) {
  const d = row.deliveries;
  return {
    dialect: row.dialect,
    id: row.id,
    reference: row.reference,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    approved: row.approved,
    failure_code: row.failureCode,
    decided_by: row.decidedBy,
    created_at: iso(row.createdAt),
    decided_at: iso(row.decidedAt),
    deliveries: { count: d.count, delivered: d.delivered, failed: d.failed, pending: d.pending, attempts: d.attempts, last_status_code: d.lastStatusCode },
  };
}

export function reportTotalsView(totals: ReportTotals) {
  return {
    payments: totals.payments,
    by_dialect: Object.fromEntries(Object.entries(totals.byDialect).map(([dialect, entry]) => [dialect, { payments: entry.payments, by_status: entry.byStatus }])),
    approved_amounts: totals.approvedAmounts,
    deliveries: totals.deliveries,
  };
}

export const REPORT_CSV_COLUMNS = [
  'dialect',
  'id',
  'reference',
  'amount',
  'currency',
  'status',
  'approved',
  'failure_code',
  'decided_by',
  'created_at',
  'decided_at',
  'deliveries',
  'delivered',
  'failed',
  'pending',
  'attempts',
  'last_status_code',
] as const;

/** A row's CSV fields, in REPORT_CSV_COLUMNS' order (null: an empty field). */
export function reportCsvValues(row: ReportRow): CsvValue[] {
  const d = row.deliveries;
  return [row.dialect, row.id, row.reference, row.amount, row.currency, row.status, row.approved, row.failureCode, row.decidedBy, iso(row.createdAt), iso(row.decidedAt), d.count, d.delivered, d.failed, d.pending, d.attempts, d.lastStatusCode];
}
