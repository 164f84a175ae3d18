import type { FastifyError } from 'fastify';
import type { FieldIssue } from '../core/errors.ts';

export interface ValidationIssue extends FieldIssue {
  in: string;
}

/**
 * Turns Fastify's Ajv errors into one entry per broken rule: where (`in` body, querystring,
 * params or headers, and a JSON pointer), which rule, and Ajv's message. A rule broken by an
 * object's key (`propertyNames`) points at that key, and Ajv's extra "property name must be
 * valid" for it is dropped: it says nothing the first one does not.
 */
export function validationIssues(error: FastifyError): ValidationIssue[] {
  const where = error.validationContext ?? 'body';
  const issues: ValidationIssue[] = [];
  /** Issues of key rules, waiting for the `propertyNames` error that names their key (Ajv reports it after them). */
  let keyIssues: ValidationIssue[] = [];
  for (const v of error.validation ?? []) {
    const params = v.params as Record<string, unknown>;
    if (v.keyword === 'propertyNames') {
      for (const issue of keyIssues) {
        issue.field = `${v.instancePath}/${String(params.propertyName)}`;
        issue.message = `key ${issue.message}`;
      }
      keyIssues = [];
      continue;
    }
    let field = v.instancePath === '' ? '/' : v.instancePath;
    if (v.keyword === 'required') field = `${v.instancePath}/${String(params.missingProperty)}`;
    if (v.keyword === 'additionalProperties') field = `${v.instancePath}/${String(params.additionalProperty)}`;
    const message = v.keyword === 'additionalProperties' ? 'is not a known field' : (v.message ?? 'is invalid');
    const issue = { in: where, field, rule: v.keyword, message };
    issues.push(issue);
    if (v.schemaPath.includes('/propertyNames/')) keyIssues.push(issue);
  }
  return issues;
}
