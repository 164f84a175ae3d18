import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { notFound, validationFailed } from '../../core/errors.ts';
import { reportBatches, type ReportSources } from '../../core/report/collect.ts';
import type { ReportRow } from '../../core/report/rows.ts';
import { TotalsAccumulator } from '../../core/report/totals.ts';
import { csvLine } from '../../http/csv.ts';
import { sendProblem } from '../../http/error-handler.ts';
import { errorResponses, RESPONSE_HEADERS } from '../../http/openapi.ts';
import { NO_FAULTS } from '../../http/scenario.ts';
import { nativeErrors } from './errors.ts';
import * as ex from './examples.ts';
import { ReportQuery, ReportView } from './report-schemas.ts';
import { REPORT_CSV_COLUMNS, reportCsvValues, reportRowView, reportTotalsView } from './report-views.ts';

/**
 * The run report of issue 15, `GET /v1/sim/report`: every payment of every dialect with its final
 * state and what its webhooks did, and totals, as JSON or (`Accept: text/csv`) CSV.
 *
 * Streamed: the stores are read a batch at a time (core/report/collect.ts), each batch rendered
 * into one chunk and written before the next is read, with a turn of the event loop between
 * batches, so a report of a million intents neither holds them all nor blocks other requests; a
 * CI job still gets the whole report in one GET. The JSON's `totals` come last, added up as the
 * rows went by. The CSV has the rows only (one per payment, RFC 4180, a header row): the totals
 * are a different table, and a trailing section would break every CSV reader's one-table view.
 * The first batch is read before the status is sent, so a store that cannot be read at all (Redis
 * away) answers its error in the native shape (503 STORE_UNAVAILABLE with Retry-After) instead of
 * a 200 cut short; once the status is out, a store failing midway cuts the body short (the
 * connection is closed without the closing bracket), which a JSON parser reports.
 * @see issue 15 "Load-test controls"
 */

const errors = (statuses: number[], options?: Parameters<typeof errorResponses>[2]) => errorResponses(ex.nativeErrorDocs, statuses, options);

export type ReportFormat = 'json' | 'csv';

/**
 * The format an `Accept` header asks for, by its q-values (then its order): `application/json`,
 * `application/*` and `*\/*` ask for JSON, `text/csv` and `text/*` for CSV; none of them: undefined (406).
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-12.5.1
 */
export function reportFormat(accept: string | undefined): ReportFormat | undefined {
  if (accept === undefined || accept.trim() === '') return 'json';
  const ranges = accept.split(',').map((part, index) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return { type, q: q === undefined ? 1 : Number(q.slice(2)), index };
  });
  ranges.sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { type, q } of ranges) {
    if (!(q > 0)) continue;
    if (type === 'application/json' || type === 'application/*' || type === '*/*') return 'json';
    if (type === 'text/csv' || type === 'text/*') return 'csv';
  }
  return undefined;
}

/**
 * The instant of a `since` that matched SINCE_PATTERN, or NaN when it names no real date and time:
 * Date.parse rolls February 30 over to March and reads 24:00 as the next day, so the date, hour and
 * minute must come back unchanged.
 */
export function instantOf(text: string): number {
  const ms = Date.parse(text);
  return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 16) !== text.slice(0, 16) ? Number.NaN : ms;
}

const CONTENT_TYPES: Record<ReportFormat, string> = { json: 'application/json; charset=utf-8', csv: 'text/csv; charset=utf-8; header=present' };

/**
 * The report's chunks: a batch of rows each, with a turn of the event loop between them. `read` is
 * the first batch's result, read before the status was sent; `batches` gives the rest.
 */
async function* render(
  format: ReportFormat,
  read: IteratorResult<ReportRow[]>,
  batches: AsyncGenerator<ReportRow[]>,
  head: { namespace: string; since: string | null; generatedAt: string },
): AsyncGenerator<string> {
  const totals = new TotalsAccumulator();
  if (format === 'csv') yield csvLine(REPORT_CSV_COLUMNS);
  else yield `{"namespace":${JSON.stringify(head.namespace)},"since":${JSON.stringify(head.since)},"generated_at":${JSON.stringify(head.generatedAt)},"payments":[`;
  let first = true;
  try {
    for (let next = read; next.done !== true; next = await batches.next()) {
      const batch = next.value;
      let chunk = '';
      for (const row of batch) {
        totals.add(row);
        if (format === 'csv') chunk += csvLine(reportCsvValues(row));
        else {
          chunk += (first ? '' : ',') + JSON.stringify(reportRowView(row));
          first = false;
        }
      }
      yield chunk;
      await nextTurn();
    }
  } finally {
    // A client gone midway: the reads stop where they are.
    await batches.return(undefined);
  }
  if (format === 'json') yield `],"totals":${JSON.stringify(reportTotalsView(totals.result()))}}`;
}

/**
 * The 200 in both formats: one media type each, with its own schema and example (a response
 * schema with `content`, which @fastify/swagger documents as it is; the body is a stream, so no
 * serializer of either schema ever runs).
 */
const reportOk = {
  description: 'The report: JSON, or CSV (`text/csv; charset=utf-8; header=present`) with `Accept: text/csv`; `Vary: Accept`.',
  headers: { 'X-Request-Id': { ...RESPONSE_HEADERS['X-Request-Id'].schema, description: RESPONSE_HEADERS['X-Request-Id'].description } },
  content: {
    'application/json': { schema: ReportView, examples: ex.reportResponses },
    'text/csv': {
      schema: Type.String({ description: `RFC 4180, CRLF line ends: a header row (${REPORT_CSV_COLUMNS.join(',')}), then one row per payment, each dialect newest first; an empty field is null; a text field starting with =, +, -, @, a tab or CR (a formula to a spreadsheet) has a leading apostrophe. No totals.` }),
      examples: ex.reportCsvResponses,
    },
  },
};

const reportRoutes: FastifyPluginAsync = async (fastify) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get(
    '/report',
    {
      config: NO_FAULTS,
      schema: {
        operationId: 'getRunReport',
        summary: 'What the simulator did: every payment, its webhooks, and totals',
        description:
          'Every payment of every dialect (native intents, /api/v2 payments, bookings — including those paid through the payment-service API — and FluxPay orders with their PG payment), each dialect newest first, with its final state, what decided it, and its webhook deliveries (count, delivered, failed, pending, attempts, last status code), then `totals` (per dialect and status, approved amounts per currency, deliveries by outcome). `since` keeps the payments created at or after it. `Accept: text/csv` answers CSV (RFC 4180, a header row, one row per payment, no totals); an `Accept` naming neither JSON nor CSV is answered 406. The body is streamed a batch of 500 payments at a time, so memory stays bounded however many payments the stores hold. `namespace`: the request’s own (`X-Sim-Namespace`, else `default`) unless named; a namespace that does not exist is a 404.',
        tags: ['reports'],
        querystring: ReportQuery,
        response: {
          200: reportOk,
          ...errors([400, 404, 406, 500, 503], { overrides: { 400: ex.badReportQuery, 404: ex.reportNamespaceNotFound } }),
        },
      },
    },
    async (request, reply) => {
      const format = reportFormat(request.headers.accept);
      if (format === undefined) return sendProblem(reply, nativeErrors, { status: 406, code: 'NOT_ACCEPTABLE', message: 'The report is available as application/json or text/csv; the Accept header allows neither.' });
      const namespace = request.query.namespace ?? app.namespace;
      const since = request.query.since === undefined ? undefined : instantOf(request.query.since);
      if (Number.isNaN(since)) throw validationFailed([{ in: 'querystring', field: '/since', rule: 'format', message: 'must be a valid ISO 8601 UTC date and time' }]);
      // Another namespace's report: read through that namespace's app (its own stores).
      const target = namespace === app.namespace ? app : await app.namespaces.peek(namespace);
      if (target === undefined) throw notFound('The namespace', namespace);
      const { stores, config, clock } = target.core;
      const sources: ReportSources = {
        intents: stores.intents,
        v2Payments: stores.v2Payments,
        listBookings: (page) => target.bookings.service.listRecent(page),
        fluxpay: stores.fluxpay,
        deliveries: stores.deliveries,
        v2Max: config.v2.maxPayments,
      };
      const head = { namespace, since: since === undefined ? null : new Date(since).toISOString(), generatedAt: new Date(clock.now()).toISOString() };
      const batches = reportBatches(sources, { since });
      // Read before the status is sent: a store that cannot be read answers its error, not a 200.
      const read = await batches.next();
      reply.header('Vary', 'Accept').type(CONTENT_TYPES[format]);
      // The typed reply expects the report object; a stream of its JSON is what is sent instead.
      return (reply as FastifyReply).send(Readable.from(render(format, read, batches, head), { objectMode: false }));
    },
  );
};

export default reportRoutes;
