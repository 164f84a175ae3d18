import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The process as an orchestrator sees it: `node src/server.ts` in a child process, configured from
 * the environment, logging pino JSON lines to stdout, shutting down on SIGTERM/SIGINT.
 */

const REPO = resolve(import.meta.dirname, '..', '..');
const SECRET = 'whsec_cHJvY2Vzcy10ZXN0LXNlY3JldC0xMjM0NQ==';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

type LogLine = Record<string, unknown> & { level?: string; msg?: string };
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class ServerProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  #listeners = new Set<() => void>();

  constructor(env: Record<string, string>) {
    // A clean environment: nothing from the runner's (OTEL_*, NODE_OPTIONS, a real WEBHOOK_SECRET) leaks in.
    const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: '0' };
    this.child = spawn(process.execPath, ['src/server.ts'], { cwd: REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#notify();
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise((done) => {
      // 'close', not 'exit': every byte of stdout and stderr has been read by then.
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.#notify();
        done(this.exit);
      });
    });
  }

  /** Every complete stdout line that is JSON; anything else on stdout is a failure of its own. */
  get lines(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as LogLine;
        } catch {
          return { unparsable: line };
        }
      });
  }

  /** Resolves with the first log line matching `predicate`, as soon as it is written. */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return this.#waitFor(() => this.lines.find(predicate), `a log line matching ${predicate.toString()}`, timeoutMs);
  }

  async port(): Promise<number> {
    const line = await this.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at '));
    const match = /:(\d+)$/.exec(String(line.msg));
    if (match?.[1] === undefined) throw new Error(`no port in ${String(line.msg)}`);
    return Number(match[1]);
  }

  async url(path: string): Promise<string> {
    return `http://127.0.0.1:${await this.port()}${path}`;
  }

  async waitForExit(timeoutMs: number): Promise<Exit> {
    return this.#waitFor(() => this.exit, 'the process to exit', timeoutMs);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.child.kill(signal);
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  #waitFor<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((done, fail) => {
      const check = (): void => {
        const value = probe();
        if (value !== undefined) {
          finish();
          done(value);
        } else if (this.exit !== undefined) {
          finish();
          fail(new Error(`process exited (${JSON.stringify(this.exit)}) before ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }
}

const children: ServerProcess[] = [];
function start(env: Record<string, string> = {}): ServerProcess {
  const server = new ServerProcess(env);
  children.push(server);
  return server;
}

afterEach(async () => {
  for (const server of children.splice(0)) {
    if (server.exit === undefined) {
      server.kill('SIGKILL');
      await server.exited;
    }
  }
});

async function createIntent(server: ServerProcess, body: Record<string, unknown>): Promise<string> {
  const res = await fetch(await server.url('/v1/sim/intent'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  const { payment_intent_id: id } = (await res.json()) as { payment_intent_id: string };
  return id;
}

/** Stops the process cleanly and returns everything it printed. */
async function stop(server: ServerProcess): Promise<string> {
  server.kill('SIGTERM');
  expect(await server.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  return server.stdout + server.stderr;
}

describe('configuration errors', () => {
  it('PORT=abc: exit 1 with one line on stderr and nothing on stdout', async () => {
    const server = start({ PORT: 'abc' });
    expect(await server.waitForExit(15_000)).toEqual({ code: 1, signal: null });
    expect(server.stderr).toBe('Invalid configuration: PORT must be integer (got "abc")\n');
    expect(server.stdout).toBe('');
  });

  it.each([
    ['RANDOM_APPROVE_RATE', '1.5', 'must be <= 1'],
    ['DEFAULT_APPROVE_DELAY_MS', '-5', 'must be >= 0'],
  ])('%s=%s: exit 1 with one line naming the variable and the rule', async (name, value, rule) => {
    const server = start({ [name]: value });
    expect(await server.waitForExit(15_000)).toEqual({ code: 1, signal: null });
    const lines = server.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(server.stderr.endsWith('\n')).toBe(true);
    expect(lines[0]).toMatch(/^Invalid configuration: /);
    expect(lines[0]).toContain(name);
    expect(lines[0]).toContain(rule);
    expect(server.stdout).toBe('');
  });
});

describe('zero configuration', () => {
  it('without WEBHOOK_SECRET: starts, warns once with a generated secret, and /readyz says so', async () => {
    const server = start();
    const res = await fetch(await server.url('/readyz'));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; details?: Record<string, string> };
    expect(body.status).toBe('ready');
    expect(body.details?.webhook_secret).toContain('WEBHOOK_SECRET');

    await stop(server);
    expect(server.stderr).toBe('');
    expect(server.lines.filter((l) => 'unparsable' in l)).toEqual([]);
    const warnings = server.stdout.split('\n').filter((line) => line.includes('"level":"warn"'));
    expect(warnings).toHaveLength(1);
    const warning = JSON.parse(warnings[0]!) as LogLine;
    expect(warning.generated_webhook_secret).toMatch(/^whsec_\S{16,}$/);
    expect(warning.msg).toMatch(/set WEBHOOK_SECRET/);
  });

  it('with WEBHOOK_SECRET: no warning, /readyz is exactly {"status":"ready"}, the secret is never printed', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET });
    const res = await fetch(await server.url('/readyz'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"status":"ready"}');
    await createIntent(server, { reservation_id: 'r-secret', amount: 100, scenario: 'approve', delay_ms: 0 });

    const output = await stop(server);
    expect(server.stdout).not.toContain('"level":"warn"');
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain('cHJvY2Vzcy10ZXN0LXNlY3JldC0xMjM0NQ');
  });
});

describe('logs', () => {
  it('carries the request id and the W3C trace id, on the log line, the response and the error body', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET });
    const res = await fetch(await server.url('/v1/sim/intent'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'test-req-123', traceparent: TRACEPARENT },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toBe('test-req-123');
    const body = (await res.json()) as { error: { code: string; trace_id: string } };
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.trace_id).toBe(TRACE_ID);

    const line = await server.waitForLine((l) => l.request_id === 'test-req-123');
    expect(line).toMatchObject({ level: 'info', request_id: 'test-req-123', trace_id: TRACE_ID, method: 'POST', route: '/v1/sim/intent', status_code: 400 });
  });

  it('never prints an Authorization header', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET });
    const res = await fetch(await server.url('/v1/sim/intents'), {
      headers: { authorization: 'Bearer secret-token-xyz', 'x-request-id': 'auth-req-1' },
    });
    expect(res.status).toBe(200);
    await server.waitForLine((l) => l.request_id === 'auth-req-1');

    const output = await stop(server);
    expect(output).not.toContain('secret-token-xyz');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM: /readyz answers 503 while pending intents are drained, reads still work, then exit 0', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET, SHUTDOWN_TIMEOUT_MS: '5000' });
    const id = await createIntent(server, { reservation_id: 'r', amount: 100, scenario: 'delay', delay_ms: 1500 });
    const readyz = await server.url('/readyz');
    const intentUrl = await server.url(`/v1/sim/intents/${id}`);

    const sentAt = Date.now();
    server.kill('SIGTERM');

    const answers: { status: number; body: string }[] = [];
    let readDuringDrain: { status: number; body: { payment_intent_id?: string; status?: string } } | undefined;
    while (server.exit === undefined && Date.now() - sentAt < 10_000) {
      try {
        const res = await fetch(readyz, { signal: AbortSignal.timeout(1000) });
        const answer = { status: res.status, body: await res.text() };
        answers.push(answer);
        if (answer.body === '{"status":"shutting_down"}' && readDuringDrain === undefined) {
          const read = await fetch(intentUrl, { signal: AbortSignal.timeout(1000) });
          readDuringDrain = { status: read.status, body: (await read.json()) as { payment_intent_id?: string; status?: string } };
        }
      } catch {
        // The server has closed its listener and is exiting.
      }
      await delay(50);
    }

    const exit = await server.waitForExit(5000);
    const tookMs = Date.now() - sentAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(3000);

    // Until the signal is handled /readyz may still say ready; from then on it never does.
    const first = answers.findIndex((a) => a.status === 503);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(answers.slice(first).every((a) => a.status === 503)).toBe(true);
    // The drain takes ~1.5 s, polled every 50 ms: the server kept answering throughout.
    const shuttingDown = answers.filter((a) => a.status === 503 && a.body === '{"status":"shutting_down"}');
    expect(shuttingDown.length).toBeGreaterThanOrEqual(5);

    expect(readDuringDrain).toEqual({ status: 200, body: expect.objectContaining({ payment_intent_id: id, status: 'PENDING' }) });

    const messages = server.lines.map((l) => l.msg);
    expect(messages).toContain('shutdown: every pending intent was decided');
    expect(messages).toContain('shutdown complete');
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'shutting down', signal: 'SIGTERM' }));
  });

  it('SIGTERM with a drain budget shorter than the pending work: warns and still exits 0', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET, SHUTDOWN_TIMEOUT_MS: '600' });
    await createIntent(server, { reservation_id: 'r-long', amount: 100, scenario: 'delay', delay_ms: 60_000 });

    const sentAt = Date.now();
    server.kill('SIGTERM');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(2000);

    expect(server.lines).toContainEqual(expect.objectContaining({ level: 'warn', pending_intents: 1 }));
    expect(server.lines.map((l) => l.msg)).toContain('shutdown complete');
  });

  it('SIGINT behaves like SIGTERM', async () => {
    const server = start({ WEBHOOK_SECRET: SECRET });
    const res = await fetch(await server.url('/healthz'));
    expect(res.status).toBe(200);

    server.kill('SIGINT');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(server.lines).toContainEqual(expect.objectContaining({ msg: 'shutting down', signal: 'SIGINT' }));
    expect(server.lines.map((l) => l.msg)).toContain('shutdown complete');
    expect(server.stderr).toBe('');
  });
});
