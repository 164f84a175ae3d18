import type { FastifyError } from 'fastify';
import type { FieldIssue } from '../core/errors.ts';

export interface ValidationIssue extends FieldIssue {
  in: string;
}

/**
 * Turns Fastify's Ajv errors into one entry per broken rule: where (`in` body, querystring,
 * params or headers, and a JSON pointer), which rule, and Ajv's message.
 */
export function validationIssues(error: FastifyError): ValidationIssue[] {
  const where = error.validationContext ?? 'body';
  return (error.validation ?? []).map((v) => {
    const params = v.params as Record<string, unknown>;
    let field = v.instancePath === '' ? '/' : v.instancePath;
    if (v.keyword === 'required') field = `${v.instancePath}/${String(params.missingProperty)}`;
    if (v.keyword === 'additionalProperties') field = `${v.instancePath}/${String(params.additionalProperty)}`;
    const message = v.keyword === 'additionalProperties' ? 'is not a known field' : (v.message ?? 'is invalid');
    return { in: where, field, rule: v.keyword, message };
  });
}

/** Fastify's own 4xx codes for bodies it could not read, mapped to what the client should hear. */
export function contentProblem(error: FastifyError): { status: number; kind: 'PAYLOAD_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'MALFORMED' } | null {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, kind: 'PAYLOAD_TOO_LARGE' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, kind: 'UNSUPPORTED_MEDIA_TYPE' };
    default:
      return error.statusCode === 400 ? { status: 400, kind: 'MALFORMED' } : null;
  }
}
