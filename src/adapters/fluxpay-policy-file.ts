import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { yamlProblem } from './yaml-error.ts';
import { DEFAULT_POLICY_YAML, parsePolicy, type BillingPolicy } from '../core/fluxpay/policy.ts';

/**
 * Reads and checks FluxPay's billing policy: `FLUXPAY_POLICY_FILE` (YAML), else the built-in
 * default. Synchronous: it runs once at start, before the server listens. Every failure is one
 * line naming the variable, the path and the problem.
 * @see issue 11 "Credits" (billing policy)
 */
export function loadPolicyFile(path: string | undefined): BillingPolicy {
  if (path === undefined) return parsePolicy(parse(DEFAULT_POLICY_YAML));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`FLUXPAY_POLICY_FILE: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let document: unknown;
  try {
    document = parse(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    throw new Error(`FLUXPAY_POLICY_FILE: ${path} is not valid YAML: ${yamlProblem(error)}`, { cause: error });
  }
  try {
    return parsePolicy(document);
  } catch (error) {
    throw new Error(`FLUXPAY_POLICY_FILE: ${path}: ${(error as Error).message}`, { cause: error });
  }
}
