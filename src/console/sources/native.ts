import { isPaymentEvent, type DomainEvent } from '../../core/events.ts';
import type { Intent } from '../../core/intents/intent.ts';
import type { IntentService } from '../../core/intents/service.ts';
import { integer, type FormBody } from '../forms.ts';
import { iso, money } from '../html.ts';
import { absentIfNotFound, groupCounts, rowsOf, ulidCursor, type HistoryEntry, type PaymentAction, type PaymentDetail, type PaymentRow, type PaymentSource, type StatusGroup } from '../sources.ts';

/**
 * Native payment intents (`/v1/sim`, issue 2) in the console: listed, detailed, cancelled and
 * refunded through the same IntentService the API uses (its store's guarded transitions decide
 * whether an action is allowed; the console only hides buttons that would be refused).
 */

/** The delivery log's subject kind of an intent (src/dialects/native/webhook-payload.ts). */
export const INTENT_SUBJECT = 'intent';

const GROUPS: Readonly<Record<Intent['status'], StatusGroup>> = {
  PENDING: 'pending',
  APPROVED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  PARTIALLY_REFUNDED: 'refunded',
  REFUNDED: 'refunded',
};

function row(intent: Intent): PaymentRow {
  return {
    dialect: 'intent',
    id: intent.id,
    reference: intent.reservationId,
    amount: intent.amount,
    currency: intent.currency,
    status: intent.status,
    group: GROUPS[intent.status],
    createdAt: intent.createdAt,
    updatedAt: intent.updatedAt,
  };
}

function history(intent: Intent): HistoryEntry[] {
  const entries: HistoryEntry[] = [{ at: intent.createdAt, status: 'PENDING', event: 'payment.created', note: `created (${intent.scenario}, decided after ${intent.delayMs} ms)` }];
  if (intent.decidedAt !== null) {
    const approved = intent.planned.status === 'APPROVED';
    entries.push({ at: intent.decidedAt, status: approved ? 'APPROVED' : 'FAILED', event: approved ? 'payment.approved' : 'payment.failed', note: approved ? 'decided' : `decided: ${intent.failureCode ?? intent.planned.failureCode ?? ''}` });
  }
  if (intent.status === 'CANCELLED') entries.push({ at: intent.updatedAt, status: 'CANCELLED', event: 'payment.cancelled', note: 'cancelled before its decision' });
  if (intent.refundedAmount > 0) entries.push({ at: intent.updatedAt, status: intent.status, event: 'payment.refunded', note: `refunded ${money(intent.refundedAmount, intent.currency)} in all (latest refund)` });
  return entries;
}

function actions(intent: Intent): PaymentAction[] {
  if (intent.status === 'PENDING') return [{ name: 'cancel', label: 'Cancel intent' }];
  if (intent.status === 'APPROVED' || intent.status === 'PARTIALLY_REFUNDED') {
    const left = intent.amount - intent.refundedAmount;
    return [{ name: 'refund', label: 'Refund', fields: [{ name: 'amount', label: 'Refund amount (minor units)', type: 'number', required: false, hint: `empty: all that is left (${left}, ${money(left, intent.currency)})` }] }];
  }
  return [];
}

export function nativeSource(intents: IntentService): PaymentSource {
  return {
    dialect: 'intent',
    label: 'Native intents (/v1/sim)',
    async list(query) {
      return rowsOf(await intents.list(query), row);
    },
    cursor: ulidCursor('pay'),
    async counts() {
      return groupCounts(await intents.counts(), GROUPS);
    },
    async find(id) {
      if (!id.startsWith('pay_')) return undefined;
      const intent = await intents.get(id).catch(absentIfNotFound);
      return intent === undefined ? undefined : row(intent);
    },
    async get(id) {
      if (!id.startsWith('pay_')) return undefined;
      const intent = await intents.get(id).catch(absentIfNotFound);
      if (intent === undefined) return undefined;
      const detail: PaymentDetail = {
        row: row(intent),
        fields: [
          ['Reservation id', intent.reservationId],
          ['Amount', money(intent.amount, intent.currency)],
          ['Refunded', money(intent.refundedAmount, intent.currency)],
          ['Scenario', intent.scenario],
          ['Failure code', intent.failureCode ?? '—'],
          ['Webhook URL', intent.webhookUrl ?? '— (the client polls)'],
          ['Created', iso(intent.createdAt)],
          ['Decided', iso(intent.decidedAt) || '—'],
          ...Object.entries(intent.metadata ?? {}).map(([key, value]) => [`metadata.${key}`, value] as const),
        ],
        history: history(intent),
        subject: { kind: INTENT_SUBJECT, id: intent.id },
        actions: actions(intent),
      };
      return detail;
    },
    async act(id, action, input: FormBody) {
      switch (action) {
        case 'cancel':
          await intents.cancel(id);
          return `Intent ${id} cancelled.`;
        case 'refund': {
          const amount = integer(input, 'amount', { min: 1, max: 100_000_000_000 });
          const intent = await intents.refund(id, amount);
          return `Refunded; ${money(intent.refundedAmount, intent.currency)} of ${money(intent.amount, intent.currency)} refunded in all.`;
        }
        default:
          throw new Error(`unknown action ${action}`);
      }
    },
    concerns: (event: DomainEvent) => isPaymentEvent(event),
  };
}
