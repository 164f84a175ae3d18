import { DomainError, notFound } from '../../core/errors.ts';
import { isV2PaymentEvent, type DomainEvent } from '../../core/events.ts';
import { V2_LIST_CURSOR, type V2Payment } from '../../core/v2/payment.ts';
import type { V2PaymentService } from '../../core/v2/service.ts';
import { iso, money } from '../html.ts';
import { groupCounts, type HistoryEntry, type PaymentDetail, type PaymentRow, type PaymentSource, type StatusGroup } from '../sources.ts';

/**
 * Payments of the Payment Server v3 API (`/api/v2`, issue 10): listed, detailed and confirmed by
 * hand through the same V2PaymentService as `POST /api/v2/confirm-payment`.
 */

/** The delivery log's subject kind of a v2 payment (src/dialects/payment-server-v2/webhook-payload.ts). */
export const V2_SUBJECT = 'v2_payment';
/** The document's payments are in won. */
const CURRENCY = 'KRW';

const GROUPS: Readonly<Record<V2Payment['status'], StatusGroup>> = { PENDING: 'pending', PAYMENT_COMPLETED: 'completed', PAYMENT_FAILED: 'failed' };

function row(payment: V2Payment): PaymentRow {
  return {
    dialect: 'v2',
    id: payment.id,
    reference: `order ${payment.orderId}`,
    amount: payment.amount,
    currency: CURRENCY,
    status: payment.status,
    group: GROUPS[payment.status],
    createdAt: payment.createdAt,
    updatedAt: payment.confirmedAt ?? payment.decidedAt ?? payment.createdAt,
  };
}

function history(payment: V2Payment): HistoryEntry[] {
  const entries: HistoryEntry[] = [{ at: payment.createdAt, status: 'PENDING', event: 'v2.payment_created', note: `created (${payment.scenario})` }];
  if (payment.decidedAt !== null) {
    entries.push(
      payment.planned.status === 'PAYMENT_FAILED'
        ? { at: payment.decidedAt, status: 'PAYMENT_FAILED', event: 'v2.payment_decided', note: `declined: ${payment.failureCode ?? ''}` }
        : { at: payment.decidedAt, status: 'PENDING', event: 'v2.payment_decided', note: 'approved; payment.completed callback sent' },
    );
  }
  if (payment.status === 'PAYMENT_COMPLETED' && payment.confirmedAt !== null) {
    entries.push({ at: payment.completedBy === 'manual' ? payment.confirmedAt : (payment.decidedAt ?? payment.confirmedAt), status: 'PAYMENT_COMPLETED', event: 'v2.payment_completed', note: payment.completedBy === 'manual' ? 'confirmed by hand' : 'callback acknowledged' });
  }
  return entries;
}

export function v2Source(service: V2PaymentService): PaymentSource {
  return {
    dialect: 'v2',
    label: 'Payment Server v3 (/api/v2)',
    async list(query) {
      const page = await service.list(query);
      return { data: page.data.map(row), cursors: page.cursors, nextCursor: page.nextCursor };
    },
    // A payment's place in creation order, not its id (ids say nothing about when it was made).
    cursor: V2_LIST_CURSOR,
    async counts() {
      return groupCounts(await service.counts(), GROUPS);
    },
    async find(id) {
      const payment = await service.get(id);
      return payment === undefined ? undefined : row(payment);
    },
    async get(id) {
      const payment = await service.get(id);
      if (payment === undefined) return undefined;
      const detail: PaymentDetail = {
        row: row(payment),
        fields: [
          ['tx_id', payment.txId],
          ['Order id', String(payment.orderId)],
          ['User id', String(payment.userId)],
          ['Amount', money(payment.amount, CURRENCY)],
          ['Scenario', payment.scenario],
          ['Failure code', payment.failureCode ?? '—'],
          ['Callback URL', payment.callbackUrl],
          ['Created', iso(payment.createdAt)],
          ['Decided', iso(payment.decidedAt) || '—'],
          ['Confirmed', payment.confirmedAt === null ? '—' : `${iso(payment.confirmedAt)} (${payment.completedBy ?? ''})`],
        ],
        history: history(payment),
        subject: { kind: V2_SUBJECT, id: payment.id },
        actions: payment.status === 'PENDING' ? [{ name: 'confirm', label: 'Confirm payment' }] : [],
      };
      return detail;
    },
    async act(id, action) {
      if (action !== 'confirm') throw new Error(`unknown action ${action}`);
      const outcome = await service.confirm(id);
      switch (outcome.kind) {
        case 'confirmed':
          return `Payment ${id} confirmed: PAYMENT_COMPLETED.`;
        case 'not_found':
          throw notFound('Payment', id);
        case 'not_pending':
          throw new DomainError('INVALID_STATE', `Payment ${id} is ${outcome.payment.status}; only a PENDING payment can be confirmed.`);
      }
    },
    concerns: (event: DomainEvent) => isV2PaymentEvent(event),
  };
}
