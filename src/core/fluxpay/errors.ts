/**
 * FluxPay's refusals, with document 002's codes (PAY_001–PAY_004) and issue 11's (PAY_005, the
 * COMMON_ codes). The core throws them; the dialect renders each as its wrapper with the status
 * of `FLUXPAY_STATUS`. Codes are never reused for another meaning.
 * @see issue 11 "Conventions of the dialect", ../../../../shared/seeds/002_38de3c186cddda84.txt ("에러 코드 체계")
 */

export const FLUXPAY_STATUS = {
  /** Insufficient credit balance. */
  PAY_001: 409,
  /** Payment approval failed. */
  PAY_002: 402,
  /** The request was already processed. */
  PAY_003: 409,
  /** The order's state does not allow this. */
  PAY_004: 409,
  /** The amount does not match the order. */
  PAY_005: 400,
  COMMON_400: 400,
  COMMON_404: 404,
  /**
   * An Idempotency-Key still in use; an admission token whose order is still being written (both
   * with Retry-After); a webhook subscription beyond FLUXPAY_MAX_SUBSCRIPTIONS (they never expire:
   * only a DELETE makes room, a retry would not help).
   */
  COMMON_409: 409,
  /** Issue 12: an order of a service a waiting room protects, without a valid admission token. */
  WAIT_001: 403,
  /** Issue 12: no subscription plan has this id. */
  SUB_001: 404,
  /** Issue 12: the subscription's state does not allow this (cancel an EXPIRED one, change the plan of one not ACTIVE…). */
  SUB_002: 409,
  /** Issue 12: the subscription kept changing under this request (other requests won every try); send it again. */
  SUB_003: 409,
  /** Issue 12: a new waiting room beyond FLUXPAY_MAX_WAITING_ROOMS (rooms are never evicted, so a retry would not help). */
  WAIT_002: 409,
} as const;

export type FluxPayCode = keyof typeof FLUXPAY_STATUS;

/** One rejected field of a COMMON_400. */
export interface FluxPayFieldError {
  field: string;
  reason: string;
}

export class FluxPayError extends Error {
  readonly code: FluxPayCode;
  /** COMMON_400: the fields and why. */
  readonly errors: readonly FluxPayFieldError[] | undefined;
  /**
   * A refusal another request in flight is about to make untrue (an admission token whose order is
   * still being written): sent with `Retry-After` (seconds), not kept under an Idempotency-Key.
   */
  readonly retryAfterS: number | undefined;

  constructor(code: FluxPayCode, message: string, errors?: readonly FluxPayFieldError[], options?: { retryAfterS: number }) {
    super(message);
    this.name = 'FluxPayError';
    this.code = code;
    this.errors = errors;
    this.retryAfterS = options?.retryAfterS;
  }
}

export function invalid(field: string, reason: string): FluxPayError {
  return new FluxPayError('COMMON_400', `${field}: ${reason}`, [{ field, reason }]);
}

/** `ofUser`: the user it was looked for under (`Usage u-1 of user user_2 was not found.`). */
export function notFound(what: string, id: string, ofUser?: string): FluxPayError {
  return new FluxPayError('COMMON_404', `${what} ${id}${ofUser === undefined ? '' : ` of user ${ofUser}`} was not found.`);
}

/** Seconds to wait before sending an order again whose admission token is in use by an order still being written. */
export const TOKEN_IN_USE_RETRY_AFTER_S = 1;

/**
 * An order whose admission token is in use by order `orderId`, still being written (it may fail and
 * give the token back): sent again in a moment, it is the order or a 403 WAIT_001.
 */
export function admissionTokenInUse(orderId: string): FluxPayError {
  return new FluxPayError(
    'COMMON_409',
    `This admission token is in use by order ${orderId}, which is still being created; send this order again in a moment: if that order is not created, the token is given back.`,
    undefined,
    { retryAfterS: TOKEN_IN_USE_RETRY_AFTER_S },
  );
}

/**
 * A first credit charge for a user beyond FLUXPAY_MAX_CREDIT_USERS. Not a 503 STORE_FULL: balances
 * are users' money and never evicted, so a retry alone never succeeds; the order stays PAID, to be
 * charged once there is room (a restart with a higher bound), or cancelled.
 */
export function creditUserLimit(max: number): FluxPayError {
  return new FluxPayError(
    'COMMON_409',
    `No credits were charged: FLUXPAY_MAX_CREDIT_USERS (${max}) users hold credit balances already, and balances are never evicted (they are users' money). Charge users who have a balance, or raise FLUXPAY_MAX_CREDIT_USERS; the order stays PAID.`,
  );
}

/** A webhook subscription beyond FLUXPAY_MAX_SUBSCRIPTIONS (`max`): what to do about it. */
export function subscriptionLimit(max: number): FluxPayError {
  return new FluxPayError(
    'COMMON_409',
    `No webhook subscription was created: FLUXPAY_MAX_SUBSCRIPTIONS (${max}) exist already, and they never expire. Delete those no longer needed (DELETE /api/v1/webhook-subscriptions/{subscriptionId}; GET /api/v1/webhook-subscriptions lists them), then subscribe again.`,
  );
}
