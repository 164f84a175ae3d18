import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { inCi } from './promtool.ts';

/**
 * A private `redis-server` (Debian package `redis-server`) for one test file: 127.0.0.1 on a free
 * port, no persistence (no RDB snapshots, no AOF), its working directory a temporary one removed
 * on stop. Tests that use it are skipped without the binary locally and fail in CI (CI set).
 */

export const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
export const REDIS_SERVER_MISSING =
  'redis-server is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends redis-server` (Debian package redis-server)';

/**
 * True when redis-server is installed; otherwise declares, under `what`, one test saying it is
 * missing (skipped locally, failing in CI), and the caller declares none of its own.
 */
export function redisServerOrSkip(what: string): boolean {
  if (hasRedisServer) return true;
  describe(what, () => {
    it.skipIf(!inCi)('needs redis-server (skipped: not installed)', () => undefined);
    it.runIf(inCi)('needs redis-server', () => {
      throw new Error(REDIS_SERVER_MISSING);
    });
  });
  return false;
}

export interface TestRedis {
  url: string;
  /** A client of its own (closed by `stop`), for setup and inspection. */
  client: Redis;
  /** A key prefix no other caller of this server has been given: one per store under test. */
  newPrefix(): string;
  /** A new client, closed by `stop`. */
  connect(): Redis;
  stop(): Promise<void>;
  /** Stops the server (SIGTERM: with `appendOnly`, what it acknowledged is on disk) and keeps its port and directory. */
  pause(): Promise<void>;
  /** Starts the server again on the same port and directory (with `appendOnly`, with its data). */
  resume(): Promise<void>;
}

export interface RedisServerOptions {
  /** AOF on (fsync every second, flushed on SIGTERM), so a `pause` and `resume` keep the data. */
  appendOnly?: boolean;
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

/** Resolves once the server says it accepts connections; rejects when it exits first (a port taken meanwhile). */
function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: string) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) {
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

function spawnServer(port: number, dir: string, options: RedisServerOptions): ChildProcess {
  return spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', options.appendOnly === true ? 'yes' : 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice'],
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

export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
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
  const url = `redis://127.0.0.1:${port}`;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(url, { maxRetriesPerRequest: 1 });
    // While a test has paused the server, failed reconnects are expected: no "Unhandled error event" noise.
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  let prefixes = 0;
  return {
    url,
    client: connect(),
    connect,
    newPrefix: () => `t${++prefixes}:`,
    async stop() {
      await Promise.all(clients.map((client) => (client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect())));
      await stopped(running);
      rmSync(dir, { recursive: true, force: true });
    },
    pause: () => stopped(running),
    async resume() {
      const again = spawnServer(port, dir, options);
      await started(again);
      running = drained(again);
    },
  };
}

/**
 * Declares a test file's tests that need a private redis-server: started before them, stopped
 * after; `body` gets a function answering it (call it inside tests and store factories, once the
 * server runs). Without the binary the tests are replaced by one that is skipped locally and fails
 * in CI (CI set), saying how to install it.
 */
export function withRedisServer(title: string, body: (server: () => TestRedis) => void): void {
  if (!hasRedisServer) {
    describe(title, () => {
      it.skipIf(!inCi)('need redis-server (skipped: not installed)', () => undefined);
      it.runIf(inCi)('need redis-server', () => {
        throw new Error(REDIS_SERVER_MISSING);
      });
    });
    return;
  }
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  body(() => {
    if (redis === undefined) throw new Error('redis-server is not started yet: call this inside a test');
    return redis;
  });
}
