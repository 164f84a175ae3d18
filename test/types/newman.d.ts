/**
 * The part of newman's Node API (https://github.com/postmanlabs/newman#api-reference) that the tests
 * use; newman ships no types of its own.
 */
declare module 'newman' {
  import type { EventEmitter } from 'node:events';

  export interface NewmanVariable {
    key: string;
    value: string;
  }

  export interface NewmanRunOptions {
    /** A collection object (v2.1 JSON) or a path or URL to one. */
    collection: string | object;
    /** Environment variables, as `--env-var key=value` on the command line. */
    envVar?: NewmanVariable[];
    globalVar?: NewmanVariable[];
    /** Reporter names; `[]` for none. */
    reporters?: string | string[];
    /** Milliseconds for each request (0: no limit). */
    timeoutRequest?: number;
    /** Milliseconds for the whole run (0: no limit). */
    timeout?: number;
    bail?: boolean;
    ignoreRedirects?: boolean;
  }

  export interface NewmanStat {
    total: number;
    pending: number;
    failed: number;
  }

  export interface NewmanAssertion {
    assertion: string;
    skipped?: boolean;
    error?: { name: string; message: string };
  }

  export interface NewmanExecution {
    item: { name: string };
    request: { method: string; url: { getHost(): string; toString(): string } };
    response?: { code: number; headers: { get(name: string): string | undefined } };
    assertions?: NewmanAssertion[];
    requestError?: Error;
  }

  export interface NewmanFailure {
    error: { name: string; message: string; test?: string };
    at: string;
    source?: { name: string };
  }

  export interface NewmanRunSummary {
    error?: Error;
    run: {
      stats: Record<'iterations' | 'items' | 'scripts' | 'prerequests' | 'requests' | 'tests' | 'assertions' | 'testScripts' | 'prerequestScripts', NewmanStat>;
      executions: NewmanExecution[];
      failures: NewmanFailure[];
      timings: { started: number; completed: number };
      error?: Error | null;
    };
  }

  export function run(options: NewmanRunOptions, callback: (error: Error | null, summary: NewmanRunSummary) => void): EventEmitter;

  const newman: { run: typeof run };
  export default newman;
}
