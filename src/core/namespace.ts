/**
 * Namespace names (issue 15): what `X-Sim-Namespace` and the report's `namespace` may carry. The
 * namespace without the header is `default` (DEFAULT_NAMESPACE in faults/service.ts).
 */
export const NAMESPACE_PATTERN = '^[A-Za-z0-9._-]{1,64}$';

/** The same rule in words, for error messages and the OpenAPI document. */
export const NAMESPACE_RULE = '1 to 64 letters, digits, ".", "_" or "-"';
