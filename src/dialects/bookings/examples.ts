import { derivedId } from '../../core/ids.ts';
import type { ErrorDocs, Examples } from '../../http/openapi.ts';
import { BookingsErrorBody } from './schemas.ts';

/**
 * The bookings API's examples for the OpenAPI document, from the README's walk-through ("The flow
 * with curl"). Ids are fixed example ids; test/integration/openapi-examples.test.ts replaces them
 * with real ones before sending each request example.
 */

export const EXAMPLE_IDS = {
  /** A pending booking, paid by the execute example. */
  toPay: 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HD',
  /** A pending booking, cancelled by the cancel example. */
  toCancel: 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HE',
  /** A confirmed booking (events, ledger). */
  confirmed: 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HF',
} as const;

export const EXAMPLE_USER = 'user_test_001';
const CREATED_AT = '2026-11-30T09:00:00.000Z';
const EXPIRES_AT = '2026-11-30T09:10:00.000Z';
const PROCESSED_AT = '2026-11-30T09:00:02.090Z';
const APPLIED_AT = '2026-11-30T09:00:02.140Z';

export const createBookingRequests: Examples = {
  book: { summary: 'Two seats of perf_001', value: { performanceId: 'perf_001', quantity: 2, paymentMethod: 'CREDIT_CARD' } },
  with_webhook: {
    summary: 'One seat, with booking webhooks to a local receiver',
    value: { performanceId: 'perf_002', quantity: 1, paymentMethod: 'CREDIT_CARD', webhookUrl: 'http://127.0.0.1:4000/webhooks/bookings' },
  },
};

const created = {
  message: 'Booking and payment intent created. Please proceed to payment execution.',
  bookingId: EXAMPLE_IDS.confirmed,
  totalAmount: 60000,
  seatIds: ['A1', 'A2'],
  expiresAt: EXPIRES_AT,
};

export const createBookingResponses: Examples = {
  book: { summary: 'Pending, the seats held until expiresAt', value: created },
  with_webhook: { summary: 'Pending; booking.confirmed (or failed, expired, cancelled) will be delivered', value: { ...created, bookingId: EXAMPLE_IDS.toPay, totalAmount: 30000, seatIds: ['A1'] } },
};

export const executePaymentRequests: Examples = {
  success: { summary: 'A CVV ending in 0, 1 or 9 succeeds', value: { bookingId: EXAMPLE_IDS.toPay, paymentMethodToken: 'tok_visa_creditCard', cvv: '120' } },
  decline: { summary: 'Any other last digit d fails with DECLINE_<d>', value: { bookingId: EXAMPLE_IDS.toPay, paymentMethodToken: 'tok_visa_creditCard', cvv: '442' } },
};

export const executePaymentResponses: Examples = {
  success: {
    summary: 'Paid; the booking is confirmed when the processor applies the result',
    value: { message: 'Payment simulation finished with status: SUCCESS', finalStatus: 'SUCCESS', bookingId: EXAMPLE_IDS.toPay, pgMockData: { isSuccess: true, failureCode: null, processedAt: PROCESSED_AT } },
  },
  decline: {
    summary: 'Declined; the booking fails and its seats are freed',
    value: { message: 'Payment simulation finished with status: FAILURE', finalStatus: 'FAILURE', bookingId: EXAMPLE_IDS.toPay, pgMockData: { isSuccess: false, failureCode: 'DECLINE_2', processedAt: PROCESSED_AT } },
  },
};

const booking = {
  bookingId: EXAMPLE_IDS.confirmed,
  userId: EXAMPLE_USER,
  performanceId: 'perf_001',
  quantity: 2,
  seatIds: ['A1', 'A2'],
  totalAmount: 60000,
  status: 'confirmed',
  createdAt: CREATED_AT,
  expiresAt: EXPIRES_AT,
};

export const myBookingsResponses: Examples = { page: { summary: 'The caller’s bookings, newest first', value: [booking] } };

export const cancelBookingRequests: Examples = { cancel: { summary: 'Cancel a pending booking', value: { bookingId: EXAMPLE_IDS.toCancel } } };
export const cancelBookingResponses: Examples = { cancel: { summary: 'Cancelled; its seats are free', value: { message: 'Booking cancelled successfully.' } } };

export const performancesResponses: Examples = {
  catalog: {
    summary: 'The catalog with live seat counts',
    value: [
      {
        performanceId: 'perf_001',
        title: '뮤지컬 〈오페라의 유령〉',
        venue: '블루스퀘어 신한카드홀',
        startsAt: '2026-03-14T10:00:00.000Z',
        rows: ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'],
        seatsPerRow: 20,
        pricePerSeat: 30000,
        currency: 'KRW',
        seats: { total: 200, available: 198, held: 0, reserved: 2 },
      },
    ],
  },
};

export const seatMapResponses: Examples = {
  seats: {
    summary: 'Every seat: status, booking and lock expiry (two of twenty shown)',
    value: {
      performanceId: 'perf_003',
      counts: { total: 20, available: 18, held: 2, reserved: 0 },
      seats: [
        { seatId: 'A1', row: 'A', number: 1, status: 'locked', bookingId: EXAMPLE_IDS.toPay, lockedUntil: EXPIRES_AT },
        { seatId: 'A3', row: 'A', number: 3, status: 'available', bookingId: null, lockedUntil: null },
      ],
    },
  },
};

export const eventsResponses: Examples = {
  events: {
    summary: 'The payment result, and when the processor applied it',
    value: [
      {
        eventId: 'evt_01KBA7Q4C2N5R8V1X4Z7B0D3FG',
        type: 'PAYMENT_SUCCEEDED',
        bookingId: EXAMPLE_IDS.confirmed,
        details: { failureCode: null, paymentMethodToken: 'tok_visa_creditCard', paymentMethod: 'CREDIT_CARD', amount: 60000, currency: 'KRW' },
        createdAt: PROCESSED_AT,
        processedAt: APPLIED_AT,
      },
    ],
  },
};

export const ledgerResponses: Examples = {
  entries: {
    summary: 'One transaction: a debit and a credit of the amount',
    value: [
      { entryId: 'led_01KBA7Q4D5P8S1W4Y7A0C3E6GH', transactionId: 'tx_01KBA7Q4D5P8S1W4Y7A0C3E6GJ', bookingId: EXAMPLE_IDS.confirmed, account: 'CUSTOMER_PAYABLE', direction: 'DEBIT', amount: 60000, currency: 'KRW', createdAt: APPLIED_AT },
      { entryId: 'led_01KBA7Q4D5P8S1W4Y7A0C3E6GK', transactionId: 'tx_01KBA7Q4D5P8S1W4Y7A0C3E6GJ', bookingId: EXAMPLE_IDS.confirmed, account: 'MERCHANT_BALANCE', direction: 'CREDIT', amount: 60000, currency: 'KRW', createdAt: APPLIED_AT },
    ],
  },
};

export const balancesResponses: Examples = {
  balances: {
    summary: 'Debits equal credits',
    value: {
      balances: [
        { account: 'CUSTOMER_PAYABLE', currency: 'KRW', debits: 60000, credits: 0, balance: 60000 },
        { account: 'MERCHANT_BALANCE', currency: 'KRW', debits: 0, credits: 60000, balance: -60000 },
      ],
      imbalance: 0,
    },
  },
};

// --- the webhook the bookings API sends ---

const webhookBody = {
  // As the service makes it: the time the booking left pending and its id's random part.
  id: derivedId('evt', Date.parse(APPLIED_AT), EXAMPLE_IDS.confirmed),
  type: 'booking.confirmed',
  createdAt: APPLIED_AT,
  bookingId: EXAMPLE_IDS.confirmed,
  userId: EXAMPLE_USER,
  performanceId: 'perf_001',
  quantity: 2,
  seatIds: ['A1', 'A2'],
  totalAmount: 60000,
  currency: 'KRW',
  status: 'confirmed',
  paymentStatus: 'SUCCESS',
  paymentMethod: 'CREDIT_CARD',
  failureCode: null,
};

/** What each webhook of the bookings API means, and an example body. */
export const BOOKING_WEBHOOKS: Readonly<Record<string, { summary: string; description: string; example: Record<string, unknown> }>> = {
  'booking.confirmed': { summary: 'A booking was confirmed', description: 'Its payment succeeded and was applied: seats sold, ledger written.', example: webhookBody },
  'booking.failed': {
    summary: 'A booking failed',
    description: 'Its payment failed; its seats are free. `failureCode` says why.',
    example: { ...webhookBody, type: 'booking.failed', status: 'failed', paymentStatus: 'FAILURE', failureCode: 'DECLINE_2' },
  },
  'booking.expired': {
    summary: 'A booking expired',
    description: 'Its seat hold passed (SEAT_HOLD_MS) without a payment; its seats are free.',
    example: { ...webhookBody, type: 'booking.expired', createdAt: EXPIRES_AT, status: 'expired', paymentStatus: 'PENDING' },
  },
  'booking.cancelled': {
    summary: 'A booking was cancelled',
    description: 'Cancelled by its user (DELETE /bookings/my); its seats are free.',
    example: { ...webhookBody, type: 'booking.cancelled', createdAt: '2026-11-30T09:01:00.000Z', status: 'cancelled', paymentStatus: 'PENDING' },
  },
};

// --- errors ---

const problem = (code: string, error: string) => ({ error, code });

export const bookingsErrorDocs: ErrorDocs = {
  schema: BookingsErrorBody,
  byStatus: {
    400: { description: 'The request is invalid (`VALIDATION_FAILED`, unknown fields too).', examples: { validation_failed: { summary: 'A field breaks a rule', value: problem('VALIDATION_FAILED', 'body /quantity: must be <= 10') } } },
    401: { description: '`UNAUTHENTICATED`: no `x-user-id`, or not 1–128 characters; checked before anything else.', examples: { no_user: { summary: 'No caller', value: problem('UNAUTHENTICATED', 'The x-user-id header is required (1–128 characters).') } } },
    403: { description: '`FORBIDDEN`: another user’s booking.', examples: { forbidden: { summary: 'Not yours', value: problem('FORBIDDEN', `Booking ${EXAMPLE_IDS.toPay} belongs to another user.`) } } },
    404: { description: '`NOT_FOUND`: no such booking (or it was evicted).', examples: { not_found: { summary: 'Unknown booking', value: problem('NOT_FOUND', `Booking ${EXAMPLE_IDS.toPay} does not exist.`) } } },
    409: {
      description: '`SOLD_OUT`, `PAYMENT_ALREADY_PROCESSED` (not pending, already paid, or a payment in flight), `INVALID_STATE`, or `IDEMPOTENCY_KEY_IN_USE`.',
      examples: { sold_out: { summary: 'Not enough seats', value: problem('SOLD_OUT', 'perf_003 has 1 seat left; 2 requested.') } },
    },
    410: { description: '`BOOKING_EXPIRED`: the seat hold has passed.', examples: { expired: { summary: 'Too late', value: problem('BOOKING_EXPIRED', `Booking ${EXAMPLE_IDS.toPay} expired at ${EXPIRES_AT}.`) } } },
    413: { description: 'The body is larger than BODY_LIMIT_BYTES.', examples: { too_large: { summary: 'Too large', value: problem('PAYLOAD_TOO_LARGE', 'The request body is larger than the limit (BODY_LIMIT_BYTES).') } } },
    415: {
      description: 'The body is not `application/json`, names a UTF-16 or UTF-32 charset (any other is not read: the body is UTF-8), or is compressed (`Content-Encoding` is not decoded). An empty body is no body, whatever its (well-formed) type.',
      examples: { media_type: { summary: 'Not JSON', value: problem('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.') }, encoded: { summary: 'Compressed', value: problem('UNSUPPORTED_MEDIA_TYPE', 'The request body is encoded (Content-Encoding: gzip), which is not read: send it uncompressed.') } },
    },
    422: { description: '`IDEMPOTENCY_KEY_MISMATCH`: this `Idempotency-Key` was used with another body.', examples: { mismatch: { summary: 'Key reused', value: problem('IDEMPOTENCY_KEY_MISMATCH', 'This Idempotency-Key was used with a different request body.') } } },
    500: { description: 'A fault of the simulator; the request may be retried.', examples: { internal: { summary: 'Internal', value: problem('INTERNAL', 'Something went wrong on our side; the request may be retried.') } } },
    503: {
      description: '`OVERLOADED` (load shedding), `SHUTTING_DOWN`, `STORE_FULL` or `STORE_UNAVAILABLE` (STORE=redis and Redis cannot be reached): retry after `Retry-After` seconds.',
      examples: {
        overloaded: { summary: 'Load shedding', value: problem('OVERLOADED', 'The simulator is overloaded (eventLoopDelay); retry after 1 s.') },
        store_unavailable: { summary: 'Redis is unreachable', value: problem('STORE_UNAVAILABLE', 'The store is unavailable; retry shortly.') },
      },
    },
  },
};

export const cancelBookingInvalid = {
  description: 'Anything but a pending, unpaid booking of the caller; `code` says why: `NOT_FOUND`, `FORBIDDEN`, `PAYMENT_ALREADY_PROCESSED`, `BOOKING_EXPIRED`, `INVALID_STATE`, or `VALIDATION_FAILED`.',
  examples: { already_cancelled: { summary: 'Already cancelled', value: problem('INVALID_STATE', `Booking ${EXAMPLE_IDS.toCancel} is already cancelled.`) } },
};

// --- per-operation error examples (what each operation really answers) ---

/** The 400 of a route that takes no query: a parameter given (a typo such as `?bookingID=` is never silently ignored). */
export const unknownQuery = {
  description: 'A query parameter was given: this route takes none.',
  examples: { unknown_parameter: { summary: 'A parameter it does not take', value: problem('VALIDATION_FAILED', 'querystring /foo: is not a known field') } },
};

/** getSeatMap's 400: what its path can break, or a query parameter (it takes none). */
export const seatMapInvalid = {
  description: '`BAD_URL`: the path has bad percent-encoding; `VALIDATION_FAILED`: the performance id is longer than 64 characters, or a query parameter was given (it takes none).',
  examples: {
    unknown_parameter: { summary: 'A parameter it does not take', value: problem('VALIDATION_FAILED', 'querystring /foo: is not a known field') },
    bad_url: { summary: 'Bad percent-encoding', value: problem('BAD_URL', 'The request path is not a valid URL (bad percent-encoding).') },
    id_too_long: { summary: 'An id over 64 characters', value: problem('VALIDATION_FAILED', 'params /id: must NOT have more than 64 characters') },
  },
};

export const badListQuery = {
  description: 'A query parameter breaks its rule (unknown parameters too), or a `cursor` that is not a `bk_<ULID>` id: only its form is checked (a well-formed id of no booking of yours is not refused).',
  examples: { validation_failed: { summary: 'limit out of range', value: problem('VALIDATION_FAILED', 'querystring /limit: must be >= 1') } },
};

export const bookingIdRequired = {
  description: '`bookingId` is required (a booking id, `bk_<ULID>`).',
  examples: { validation_failed: { summary: 'No bookingId', value: problem('VALIDATION_FAILED', "querystring /bookingId: must have required property 'bookingId'") } },
};

export const performanceNotFound = {
  description: '`NOT_FOUND`: no such performance.',
  examples: { not_found: { summary: 'Unknown performance', value: problem('NOT_FOUND', 'Performance perf_999 does not exist.') } },
};

/** createBooking's 409: only seats or a key still running. */
export const bookConflict = {
  description: '`SOLD_OUT`: fewer seats are free than `quantity`; `IDEMPOTENCY_KEY_IN_USE`: a request with this key is still running, or (with Redis) took the key over from this one, which then did nothing.',
  examples: { sold_out: { summary: 'Not enough seats', value: problem('SOLD_OUT', 'perf_003 has 1 seat left; 2 requested.') } },
};

/** executePayment's 400: its own body's fields. */
export const executeInvalid = {
  description: 'The body is invalid (`VALIDATION_FAILED`): `bookingId` and `paymentMethodToken` are required, `cvv` is 3 or 4 digits; unknown fields too.',
  examples: { validation_failed: { summary: 'No paymentMethodToken', value: problem('VALIDATION_FAILED', "body /paymentMethodToken: must have required property 'paymentMethodToken'") } },
};

export const executeConflict = {
  description: '`PAYMENT_ALREADY_PROCESSED`: the booking is not pending, already paid, or has a payment in flight; `IDEMPOTENCY_KEY_IN_USE`.',
  examples: {
    already_processed: { summary: 'Paid already', value: problem('PAYMENT_ALREADY_PROCESSED', `The payment for booking ${EXAMPLE_IDS.confirmed} has already been processed (SUCCESS).`) },
  },
};
