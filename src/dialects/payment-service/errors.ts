import type { ErrorShape } from '../../http/error-handler.ts';
import type { Problem } from '../../http/problem.ts';
import { PaymentServiceErrorBody } from './schemas.ts';

/**
 * The ticketing payment-service API's error shape (document 004): `{"error": "<message>"}`, in
 * Korean as that service wrote its messages. Validation problems are worded as document 004
 * words them: missing fields first, then the reservation id, then the method.
 * @see issue 4 "The ticketing payment-service API", ../../../../shared/seeds/004_bd5a7b9162ab823c.decoded.txt
 */

export const MESSAGES = {
  paid: '결제가 완료되었습니다.',
  unauthenticated: '인증이 필요합니다.',
  invalidToken: '유효하지 않은 토큰입니다.',
  noSecret: 'JWT_SECRET이 설정되지 않아 결제 서비스를 사용할 수 없습니다. 환경변수 JWT_SECRET을 설정하세요.',
  missingFields: '예약 ID와 결제 수단은 필수입니다.',
  badReservationId: '유효하지 않은 예약 ID입니다.',
  unknownMethod: '지원하지 않는 결제 수단입니다.',
  unknownField: '알 수 없는 필드가 포함되어 있습니다',
  badRequest: '잘못된 요청입니다.',
  // Paysim's own, as its 413 and 414: a header of paysim's (X-Sim-Namespace) that is not valid, and no room for another namespace.
  badHeader: '요청 헤더가 올바르지 않습니다',
  namespaceLimit: '네임스페이스를 더 만들 수 없습니다(NAMESPACES_MAX). DELETE /v1/sim/namespaces/{namespace}로 하나를 초기화하거나 기존 네임스페이스를 사용하세요.',
  malformedJson: '요청 본문의 JSON 형식이 올바르지 않습니다',
  jsonTooDeep: '요청 본문의 JSON이 너무 깊게 중첩되어 있습니다',
  notFound: '예약을 찾을 수 없습니다.',
  alreadyPaid: '이미 결제된 예약입니다.',
  inProgress: '이미 결제가 진행 중인 예약입니다.',
  expired: '만료된 예약입니다.',
  cancelled: '취소된 예약입니다.',
  failed: '결제에 실패한 예약입니다. 다시 예약해 주세요.',
  tooLarge: '요청 본문이 너무 큽니다.',
  unsupportedMediaType: '요청 본문은 application/json 형식이어야 합니다.',
  routeNotFound: '요청한 경로를 찾을 수 없습니다.',
  methodNotAllowed: '허용되지 않는 메서드입니다.',
  uriTooLong: '요청 URI가 너무 깁니다.',
  // Paysim's own, as its 413 and 414: what Node's parser refuses before any route (src/http/client-errors.ts).
  headersTooLarge: '요청 헤더가 너무 큽니다.',
  requestTimeout: '요청을 제시간에 받지 못했습니다. 다시 시도해 주세요.',
  overloaded: '서버가 과부하 상태입니다. 잠시 후 다시 시도해 주세요.',
  unavailable: '서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.',
  // Paysim's own: the original (document 004) never answers 429 and has no text for it; this one
  // is written as its other "try again shortly" messages are (a fault rule's 429, with Retry-After).
  tooManyRequests: '요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.',
  internal: '결제 처리 중 오류가 발생했습니다.',
} as const;

export const paymentServiceErrors: ErrorShape = {
  schema: PaymentServiceErrorBody,
  name: 'payment-service',
  prefixes: ['/api/v1/payments', '/health'],
  statusOf: { VALIDATION_FAILED: 400 },
  render(reply, problem) {
    return reply.send({ error: messageOf(problem) });
  },
};

function messageOf(problem: Problem): string {
  switch (problem.status) {
    case 400:
      return problem.code === 'VALIDATION_FAILED' ? validationMessage(problem) : MESSAGES.badRequest;
    case 401:
      return MESSAGES.unauthenticated;
    case 403:
      return MESSAGES.invalidToken;
    case 404:
      return MESSAGES.routeNotFound;
    case 405:
      return MESSAGES.methodNotAllowed;
    case 409:
      return problem.code === 'NAMESPACE_LIMIT' ? MESSAGES.namespaceLimit : MESSAGES.badRequest;
    case 413:
      return MESSAGES.tooLarge;
    case 414:
      return MESSAGES.uriTooLong;
    case 415:
      return MESSAGES.unsupportedMediaType;
    case 408:
      return MESSAGES.requestTimeout;
    case 431:
      return MESSAGES.headersTooLarge;
    case 429:
      return MESSAGES.tooManyRequests;
    case 503:
      return problem.code === 'OVERLOADED' ? MESSAGES.overloaded : MESSAGES.unavailable;
    default:
      return problem.status >= 500 ? MESSAGES.internal : MESSAGES.badRequest;
  }
}

function validationMessage(problem: Problem): string {
  const broken = problem.malformedJson;
  if (broken !== undefined) return `${broken.kind === 'malformed' ? MESSAGES.malformedJson : MESSAGES.jsonTooDeep} (${broken.line}행 ${broken.column}열, 위치 ${broken.position}).`;
  const issues = (problem.details ?? []).map((d) => ({ in: d.in ?? 'body', field: d.field, rule: d.rule }));
  const body = issues.filter((i) => i.in === 'body');
  const header = issues.find((i) => i.in === 'headers');
  if (body.length === 0) return header === undefined ? MESSAGES.badRequest : `${MESSAGES.badHeader}: ${header.field.replace(/^\//, '')}`;
  if (body.some((i) => i.rule === 'required' || i.rule === 'minLength')) return MESSAGES.missingFields;
  if (body.some((i) => i.field === '/reservationId')) return MESSAGES.badReservationId;
  if (body.some((i) => i.field === '/paymentMethod')) return MESSAGES.unknownMethod;
  const extra = body.find((i) => i.rule === 'additionalProperties');
  if (extra !== undefined) return `${MESSAGES.unknownField}: ${extra.field.replace(/^\//, '')}`;
  return MESSAGES.badRequest;
}
