import type { V2Payment } from '../../core/v2/payment.ts';

/** How the Payment Server v3 API shows a payment: snake_case, ISO 8601 UTC times, never the planned outcome or the scenario. */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function paymentView(payment: V2Payment) {
  return {
    payment_id: payment.id,
    order_id: payment.orderId,
    tx_id: payment.txId,
    user_id: payment.userId,
    amount: payment.amount,
    status: payment.status,
    created_at: iso(payment.createdAt) as string,
    confirmed_at: iso(payment.confirmedAt),
    callback_url: payment.callbackUrl,
    failure_code: payment.failureCode,
  };
}

export { iso };
