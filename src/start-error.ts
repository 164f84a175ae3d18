/**
 * A start that fails after the configuration was read (the port is taken, HOST is not an address
 * of this machine or cannot be resolved, no permission for the port) is told on one stderr line,
 * like a configuration error: what failed, the system's code, and what to change. No stack: these
 * are the operator's to fix, not bugs.
 */

/**
 * A start that cannot go on for a reason the operator fixes, found while the app is built (a
 * FAULTS_FILE rule no route can match, a file whose rules do not fit): serve.ts tells it on one
 * line, `Could not start: …`, exit 1, as a taken port. Before 2026-12-05 such an error at the
 * build ended in a stack trace.
 */
export class StartProblem extends Error {
  override name = 'StartProblem';
}

export interface ListenTarget {
  host: string;
  port: number;
}

export function describeStartError(error: unknown, { host, port }: ListenTarget): string {
  const e = (error ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return `Could not start: ${where} is already in use (EADDRINUSE); stop what listens there or set PORT to a free port`;
    case 'EADDRNOTAVAIL':
      return `Could not start: HOST ${host} is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return `Could not start: HOST ${host} is neither an IP address nor a name that resolves (${code}); set HOST to an address of this machine, or 0.0.0.0 for all`;
    case 'EACCES':
    case 'EPERM':
      return `Could not start: no permission to listen on ${where} (${code}); use a PORT above 1023 or give the process the right to bind low ports`;
    default: {
      const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
      // One line, whatever the message holds.
      return `Could not start: ${message.replace(/\s*\n\s*/g, ' ')}${code === undefined || message.includes(code) ? '' : ` (${code})`}`;
    }
  }
}
