/**
 * Namespace names (issue 15): what `X-Sim-Namespace` and the report's `namespace` may carry. The
 * namespace without the header is `default` (DEFAULT_NAMESPACE in faults/service.ts).
 */
export const NAMESPACE_PATTERN = '^(?!\\.+$)[A-Za-z0-9._-]{1,64}$';

const NAME = new RegExp(NAMESPACE_PATTERN);

/** True when `name` is a namespace's name (NAMESPACE_PATTERN): a header's, or a shared listing's. */
export function isNamespaceName(name: string): boolean {
  return NAME.test(name);
}

/**
 * The same rule in words, for error messages and the OpenAPI document. Not dots alone: `.` and
 * `..` are dot segments, which clients resolve away from `DELETE /v1/sim/namespaces/{namespace}`,
 * so such a namespace could be made and never reset (a user test, 2026-12-05).
 */
export const NAMESPACE_RULE = '1 to 64 letters, digits, ".", "_" or "-", not dots alone';
