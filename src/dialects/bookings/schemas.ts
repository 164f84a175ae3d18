import { Type } from 'typebox';
import { BOOKING_STATUSES, MAX_QUANTITY } from '../../core/bookings/booking.ts';
import { LEDGER_ACCOUNTS } from '../../core/ledger.ts';
import { IdempotencyKeyHeader, IsoDateTime, PrefixedId, WebhookUrl } from '../../http/schemas.ts';

/**
 * Schemas of the bookings API (source document 003), camelCase. Objects reject unknown fields,
 * as in the native API: a typo in a booking request is an error, not a silent default.
 * @see issue 4 "The bookings API"
 */

const Strict = { additionalProperties: false } as const;

const Id = (description: string) => Type.String({ minLength: 1, maxLength: 64, description });
const Amount = Type.Integer({ minimum: 0, description: 'Minor units of the currency (KRW has none)' });

export const UserIdHeader = Type.Object({
  'x-user-id': Type.String({ minLength: 1, maxLength: 128, description: 'The caller. Required on every route of this API: 401 UNAUTHENTICATED without it.' }),
});

export const UserAndIdempotencyHeaders = Type.Object({ ...UserIdHeader.properties, ...IdempotencyKeyHeader.properties });

export const CreateBookingBody = Type.Object(
  {
    performanceId: Id('A performance of GET /performances, e.g. perf_001'),
    quantity: Type.Integer({ minimum: 1, maximum: MAX_QUANTITY, description: 'Seats to hold, 1–10; adjacent in one row where possible' }),
    paymentMethod: Type.String({ minLength: 1, maxLength: 64, description: 'Recorded on the booking, e.g. CREDIT_CARD' }),
    // Receives booking.confirmed | failed | expired | cancelled, signed like every webhook.
    webhookUrl: Type.Optional(WebhookUrl),
  },
  { ...Strict, title: 'CreateBookingRequest' },
);

export const CreateBookingResponse = Type.Object({
  message: Type.String(),
  bookingId: Type.String({ description: 'bk_<ULID>' }),
  totalAmount: Amount,
  seatIds: Type.Array(Type.String(), { description: 'e.g. ["C7", "C8"]' }),
  // When the seat hold lapses unless paid: SEAT_HOLD_MS after creation.
  expiresAt: IsoDateTime,
}, { title: 'CreateBookingResponse' });

export const ExecutePaymentBody = Type.Object(
  {
    bookingId: Id('bk_<ULID>'),
    paymentMethodToken: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'tok_visa, tok_mastercard (the CVV rule decides), tok_chargeDeclined, tok_chargeDeclinedInsufficientFunds, a test card number, or any other token (the CVV rule decides)',
    }),
    cvv: Type.String({ minLength: 1, maxLength: 4, description: '3 or 4 digits; last digit 0, 1 or 9 approves, any other digit d fails with DECLINE_<d>' }),
  },
  { ...Strict, title: 'ExecutePaymentRequest' },
);

export const PgMockData = Type.Object({
  isSuccess: Type.Boolean(),
  failureCode: Type.Union([Type.String(), Type.Null()]),
  processedAt: IsoDateTime,
}, { title: 'PgMockData', description: 'The simulated gateway’s answer' });

export const ExecutePaymentResponse = Type.Object({
  message: Type.String(),
  finalStatus: Type.Union([Type.Literal('SUCCESS'), Type.Literal('FAILURE')]),
  bookingId: Type.String(),
  pgMockData: PgMockData,
}, { title: 'ExecutePaymentResponse' });

export const BookingView = Type.Object({
  bookingId: Type.String(),
  userId: Type.String(),
  performanceId: Type.String(),
  quantity: Type.Integer(),
  seatIds: Type.Array(Type.String()),
  totalAmount: Amount,
  status: Type.Enum(BOOKING_STATUSES),
  createdAt: IsoDateTime,
  expiresAt: IsoDateTime,
}, { title: 'Booking' });

export const BookingList = Type.Array(BookingView, { title: 'BookingList', description: "The caller's bookings, newest first; when there are more, the `Link` (rel=next) and `X-Next-Cursor` headers say where the next page starts" });

export const MyBookingsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'Bookings per page', examples: [20] })),
    cursor: Type.Optional(PrefixedId('bk', 'The X-Next-Cursor of the previous page', 'bk_01KBA7Q4A6J3M8P1T5W9Y2C4HF')),
  },
  Strict,
);

export const CancelBookingBody = Type.Object({ bookingId: Id('bk_<ULID>') }, { ...Strict, title: 'CancelBookingRequest' });

export const MessageBody = Type.Object({ message: Type.String() }, { title: 'Message' });

export const SeatCounts = Type.Object({
  total: Type.Integer(),
  available: Type.Integer(),
  held: Type.Integer({ description: 'Locked by pending bookings' }),
  reserved: Type.Integer({ description: 'Sold' }),
}, { title: 'SeatCounts' });

export const PerformanceView = Type.Object({
  performanceId: Type.String(),
  title: Type.String(),
  venue: Type.String(),
  startsAt: IsoDateTime,
  rows: Type.Array(Type.String(), { description: 'Row labels, front to back' }),
  seatsPerRow: Type.Integer(),
  pricePerSeat: Amount,
  currency: Type.String(),
  seats: SeatCounts,
}, { title: 'Performance' });

export const PerformanceList = Type.Array(PerformanceView, { title: 'PerformanceList' });

export const PerformanceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: 'perf_…', examples: ['perf_003'] }) });

export const SeatMap = Type.Object({
  performanceId: Type.String(),
  counts: SeatCounts,
  seats: Type.Array(
    Type.Object({
      seatId: Type.String(),
      row: Type.String(),
      number: Type.Integer(),
      status: Type.Enum(['available', 'locked', 'reserved']),
      bookingId: Type.Union([Type.String(), Type.Null()]),
      lockedUntil: Type.Union([IsoDateTime, Type.Null()]),
    }),
    { description: 'Front row first, seats by number' },
  ),
}, { title: 'SeatMap' });

/** The query of a bookings route that takes none: any parameter is refused (400, `is not a known field`), as `/bookings/my` refuses one it does not take. */
export const NoQuery = Type.Object({}, Strict);

export const BookingIdQuery = Type.Object({ bookingId: Type.String({ minLength: 1, maxLength: 64, description: "One of the caller's bookings", examples: ['bk_01KBA7Q4A6J3M8P1T5W9Y2C4HF'] }) }, Strict);

export const InboxEventView = Type.Object({
  eventId: Type.String({ description: 'evt_<ULID>' }),
  type: Type.Enum(['PAYMENT_SUCCEEDED', 'PAYMENT_FAILED']),
  bookingId: Type.String(),
  details: Type.Object({
    failureCode: Type.Union([Type.String(), Type.Null()]),
    paymentMethodToken: Type.Union([Type.String({ description: 'As given to /payments/execute (card numbers masked to the last four digits); null for /api/v1/payments/process' }), Type.Null()]),
    paymentMethod: Type.String(),
    amount: Amount,
    currency: Type.String(),
  }),
  createdAt: IsoDateTime,
  processedAt: Type.Union([IsoDateTime, Type.Null()], { description: 'When the processor applied it; null until then' }),
}, { title: 'InboxEvent' });

export const InboxEventList = Type.Array(InboxEventView, { title: 'InboxEventList' });

export const LedgerEntryView = Type.Object({
  entryId: Type.String({ description: 'led_<ULID>' }),
  transactionId: Type.String({ description: 'tx_<ULID>, shared by the two entries of one transaction' }),
  bookingId: Type.String(),
  account: Type.Enum(LEDGER_ACCOUNTS),
  direction: Type.Enum(['DEBIT', 'CREDIT']),
  amount: Type.Integer({ minimum: 1 }),
  currency: Type.String(),
  createdAt: IsoDateTime,
}, { title: 'LedgerEntry' });

export const LedgerEntryList = Type.Array(LedgerEntryView, { title: 'LedgerEntryList' });

export const LedgerBalances = Type.Object({
  balances: Type.Array(
    Type.Object({
      account: Type.Enum(LEDGER_ACCOUNTS),
      currency: Type.String(),
      debits: Type.Integer(),
      credits: Type.Integer(),
      balance: Type.Integer({ description: 'debits − credits: the balances of one currency sum to 0' }),
    }),
  ),
  imbalance: Type.Integer({ description: 'Total debits − total credits over every entry: always 0' }),
}, { title: 'LedgerBalances' });

export const BookingsErrorBody = Type.Object({
  error: Type.String({ description: 'What went wrong, for people' }),
  code: Type.String({ description: 'Stable, for programs: UNAUTHENTICATED, VALIDATION_FAILED, NOT_FOUND, FORBIDDEN, SOLD_OUT, PAYMENT_ALREADY_PROCESSED, BOOKING_EXPIRED, …' }),
}, { title: 'BookingsError' });

/** The body of the bookings API's webhooks (documented under the document's `webhooks`). */
export const BookingWebhook = Type.Object(
  {
    id: Type.String({ description: 'The event id (evt_<ULID>), the same on every retry and replay: de-duplicate on it' }),
    type: Type.Enum(['booking.confirmed', 'booking.failed', 'booking.expired', 'booking.cancelled']),
    createdAt: IsoDateTime,
    bookingId: Type.String(),
    userId: Type.String(),
    performanceId: Type.String(),
    quantity: Type.Integer(),
    seatIds: Type.Array(Type.String()),
    totalAmount: Amount,
    currency: Type.String(),
    status: Type.Enum(BOOKING_STATUSES),
    paymentStatus: Type.Enum(['PENDING', 'SUCCESS', 'FAILURE']),
    paymentMethod: Type.String(),
    failureCode: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'BookingWebhook' },
);
