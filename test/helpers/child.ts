import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * The service as an orchestrator runs it: `node src/server.ts` in a child process with a clean
 * environment, its stdout (pino JSON lines) and stderr collected, its address read from the
 * "Server listening at" log line.
 */

export const REPO = resolve(import.meta.dirname, '..', '..');

/**
 * Node's compile cache for the processes the tests start (NODE_COMPILE_CACHE): the source's types
 * stripped and every module compiled once, not again at each of the suite's hundred-odd starts
 * (a start's CPU time 3.9 s -> 3.2 s on this 2-core VM, the stripping gone from its profile).
 * Entries are checked against their source; a process that exits writes what it compiled.
 * @see https://nodejs.org/api/module.html#module-compile-cache
 */
export const COMPILE_CACHE = resolve(REPO, '.cache', 'node-compile');

export type LogLine = Record<string, unknown> & { level?: string; msg?: string };
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How to start the process, when not as `node src/server.ts` in the repository. */
export interface SpawnOptions {
  /** Node's arguments (default `['src/server.ts']`). */
  args?: readonly string[];
  /** Working directory (default the repository). */
  cwd?: string;
  /** Leave HOST=127.0.0.1, PORT=0 and OVERLOAD_MAX_EVENT_LOOP_DELAY_MS=0 out of the environment (only PATH and `env`), e.g. to let a `.env` file set them. */
  noDefaults?: boolean;
}

export class ServerProcess {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  /** Real time (Date.now()) when the process had exited and its output was read. */
  exitedAt: number | undefined;
  #listeners = new Set<() => void>();

  /** Starts on 127.0.0.1 and a port of the kernel's choosing; `env` adds to or overrides that. */
  constructor(env: Record<string, string> = {}, options: SpawnOptions = {}) {
    // A clean environment: nothing from the runner's (OTEL_*, NODE_OPTIONS, a real WEBHOOK_SECRET) leaks in
    // (but the compile cache, which changes no behaviour).
    // Event-loop-delay shedding off by default (see buildTestApp): a busy machine must not turn a
    // test of something else into 503 OVERLOADED. A test of the defaults passes noDefaults.
    const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_COMPILE_CACHE: COMPILE_CACHE, ...(options.noDefaults === true ? {} : { HOST: '127.0.0.1', PORT: '0', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0' }) };
    this.child = spawn(process.execPath, options.args ?? ['src/server.ts'], { cwd: options.cwd ?? REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
        this.exitedAt = Date.now();
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

  /** Everything printed so far, for failure messages. */
  get output(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }

  /** Resolves with the first log line matching `predicate`, as soon as it is written (30 s by default: a start takes 3–4 s on an idle 2-core machine, over 10 s on a busy one). */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    return this.#waitFor(() => this.lines.find(predicate), `a log line matching ${predicate.toString()}`, timeoutMs);
  }

  /** `http://127.0.0.1:<port>`, from the "Server listening at" line. */
  async origin(): Promise<string> {
    const line = await this.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at '));
    const match = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(String(line.msg));
    if (match?.[1] === undefined) throw new Error(`unexpected listening line ${String(line.msg)}`);
    return match[1];
  }

  async url(path: string): Promise<string> {
    return `${await this.origin()}${path}`;
  }

  waitForExit(timeoutMs: number): Promise<Exit> {
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
          fail(new Error(`process exited (${JSON.stringify(this.exit)}) before ${what}\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.output}`));
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

/**
 * Server processes for one test file: `start` one (not waiting for it to listen), `killAll` in an
 * afterEach SIGKILLs the ones still running and waits for them.
 */
export function serverProcesses(): { start(env?: Record<string, string>, options?: SpawnOptions): ServerProcess; killAll(): Promise<void> } {
  const started: ServerProcess[] = [];
  return {
    start(env = {}, options = {}) {
      const server = new ServerProcess(env, options);
      started.push(server);
      return server;
    },
    async killAll() {
      for (const server of started.splice(0)) {
        if (server.exit === undefined) {
          server.kill('SIGKILL');
          await server.exited;
        }
      }
    },
  };
}

/** Runs the server until it exits by itself (a start that fails); SIGKILLed if it is still running after `timeoutMs`. */
export async function runToExit(env: Record<string, string>, timeoutMs = 15_000): Promise<Exit & { stdout: string; stderr: string }> {
  const server = new ServerProcess(env);
  try {
    const exit = await server.waitForExit(timeoutMs);
    return { ...exit, stdout: server.stdout, stderr: server.stderr };
  } finally {
    if (server.exit === undefined) {
      server.kill('SIGKILL');
      await server.exited;
    }
  }
}
