import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private `redis-server` process (Debian package `redis-server`): 127.0.0.1 on a free port, its
 * working directory a temporary one removed on stop, no RDB snapshots and AOF only when asked.
 * No test framework and no client here, so the tests' helpers (test/helpers/redis.ts, the
 * PAYSIM_TEST_STORE=redis global setup) and the benchmarks (scripts/bench-cluster.ts) share it.
 */

export const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
export const REDIS_SERVER_MISSING =
  'redis-server is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends redis-server` (Debian package redis-server)';

export interface RedisServerOptions {
  /** AOF on (fsync every second, flushed on SIGTERM), so a `pause` and `resume` keep the data. */
  appendOnly?: boolean;
  /**
   * A slow load on a small data set: each key loaded at start waits this long (Redis'
   * `key-load-delay`), and Redis answers clients meanwhile (`LOADING`) every kilobyte
   * (`loading-process-events-interval-bytes`; by default every 2 MB, so not at all for a small one).
   */
  keyLoadDelayMicros?: number;
  /** More of redis-server's options, as its command line takes them (`['--cluster-enabled', 'yes']`). */
  extraArgs?: readonly string[];
  /**
   * TLS only: the free port is its `--tls-port` (`--port 0`: no plain port), with this certificate
   * and key (PEM files; test/helpers/test-ca.ts makes them). With `clientCaFile`, a client
   * certificate signed by that CA is asked for (`tls-auth-clients yes`); else none is.
   */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string };
}

export interface RedisServerProcess {
  port: number;
  /** `redis://127.0.0.1:<port>` (`rediss://` with `tls`) */
  url: string;
  /** The running server's process (a `resume` starts another). */
  readonly child: ChildProcess;
  /** Stops the server (SIGTERM) and removes its directory. */
  stop(): Promise<void>;
  /** Stops the server (SIGTERM: with `appendOnly`, what it acknowledged is on disk) and keeps its port and directory. */
  pause(): Promise<void>;
  /**
   * Starts the server again on the same port and directory (with `appendOnly`, with its data).
   * Resolves once it has loaded its data; with `loaded: false` as soon as it takes connections
   * (before it loads: it answers `LOADING` meanwhile).
   */
  resume(options?: { loaded?: boolean }): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Its log's line once it has loaded its data; `Server initialized` comes once it listens, before it loads. */
const READY = 'Ready to accept connections';
const LISTENING = 'Server initialized';

/** Resolves once the server's log says `line` (by default: it has loaded its data); rejects when it exits first (a port taken meanwhile). */
function started(child: ChildProcess, line = READY): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: string) => {
      output += chunk;
      if (output.includes(line)) {
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output.slice(-2_000)}`));
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.once('exit', onExit);
    child.once('error', reject);
  });
}

function tlsClients(caFile: string | undefined): string[] {
  return caFile === undefined ? ['--tls-auth-clients', 'no'] : ['--tls-auth-clients', 'yes', '--tls-ca-cert-file', caFile];
}

function spawnServer(port: number, dir: string, options: RedisServerOptions): ChildProcess {
  return spawn(
    'redis-server',
    [
      ...['--bind', '127.0.0.1', ...(options.tls === undefined ? ['--port', String(port)] : ['--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile, ...tlsClients(options.tls.clientCaFile)]), '--save', '', '--appendonly', options.appendOnly === true ? 'yes' : 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice'],
      ...(options.keyLoadDelayMicros === undefined ? [] : ['--key-load-delay', String(options.keyLoadDelayMicros), '--loading-process-events-interval-bytes', '1024']),
      ...(options.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** Drains a started server's output so a chatty server never blocks on a full pipe. */
function drained(child: ChildProcess): ChildProcess {
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** Starts a server on a free port (trying another port up to five times when one is taken meanwhile). */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    const candidate = spawnServer(port, dir, options);
    try {
      await started(candidate);
      child = candidate;
    } catch (error) {
      candidate.kill('SIGKILL');
      if (attempt === 4) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  let running = drained(child);
  return {
    port,
    url: `${options.tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    get child() {
      return running;
    },
    async stop() {
      await stopped(running);
      rmSync(dir, { recursive: true, force: true });
    },
    pause: () => stopped(running),
    async resume({ loaded = true } = {}) {
      const again = spawnServer(port, dir, options);
      await started(again, loaded ? READY : LISTENING);
      running = drained(again);
    },
  };
}
