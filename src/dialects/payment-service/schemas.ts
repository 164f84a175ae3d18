import { Type } from 'typebox';
import { IsoDateTime } from '../../http/schemas.ts';

/**
 * Schemas of the ticketing payment-service API (source document 004), camelCase, errors
 * `{"error": "<message>"}` in Korean as that service wrote them.
 * @see issue 4 "The ticketing payment-service API", ../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

export const PAYMENT_METHODS = [
  { id: 'naver_pay', name: '네이버페이', description: '네이버페이로 간편하게 결제합니다.', icon: '🟢' },
  { id: 'kakao_pay', name: '카카오페이', description: '카카오페이로 간편하게 결제합니다.', icon: '🟡' },
  { id: 'bank_transfer', name: '계좌이체', description: '실시간 계좌이체로 결제합니다.', icon: '🏦' },
  { id: 'credit_card', name: '신용카드', description: '신용카드 또는 체크카드로 결제합니다.', icon: '💳' },
] as const;

export type PaymentMethodId = (typeof PAYMENT_METHODS)[number]['id'];

export const PaymentMethodList = Type.Object({
  methods: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String({ description: 'Display name' }),
      description: Type.String(),
      icon: Type.String(),
    }),
  ),
}, { title: 'PaymentMethodList' });

/** The token (declared as the `bearerAuth` security scheme too, so Swagger UI's "Authorize" sends it). */
export const BearerHeader = Type.Object({
  authorization: Type.Optional(
    Type.String({ description: 'Bearer <JWT>: HS256 signed with JWT_SECRET; the user is its userId claim, else its sub claim. 401 without, 403 when invalid or expired.' }),
  ),
});

export const ProcessPaymentBody = Type.Object(
  {
    reservationId: Type.String({ minLength: 1, pattern: '^bk_[0-9A-HJKMNP-TV-Z]{26}$', 'x-pattern-description': 'bk_ followed by a 26-character ULID', description: 'A booking id (bk_<ULID>) of POST /bookings, made by the same user' }),
    paymentMethod: Type.Enum(
      PAYMENT_METHODS.map((m) => m.id),
      { description: 'One of GET /api/v1/payments/methods' },
    ),
  },
  { additionalProperties: false, title: 'ProcessPaymentRequest' },
);

export const ProcessPaymentResponse = Type.Object({
  success: Type.Literal(true),
  message: Type.String(),
  payment: Type.Object({
    reservationId: Type.String(),
    paymentMethod: Type.String({ description: 'The method’s display name, e.g. 카카오페이' }),
    totalAmount: Type.Integer({ minimum: 0 }),
    paidAt: IsoDateTime,
  }),
  reservation: Type.Object({
    performanceId: Type.String(),
    seats: Type.Array(Type.String(), { description: 'Seat ids, now reserved' }),
  }),
}, { title: 'ProcessPaymentResponse' });

export const Health = Type.Object({ status: Type.Literal('ok'), service: Type.Literal('payment-service') }, { title: 'PaymentServiceHealth' });

export const PaymentServiceErrorBody = Type.Object({ error: Type.String({ description: 'In Korean, as the original service answered' }) }, { title: 'PaymentServiceError' });
