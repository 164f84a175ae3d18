import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { inCi } from './promtool.ts';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedisServer, type RedisServerOptions } from './redis-server.ts';

export type { RedisServerOptions } from './redis-server.ts';

/**
 * A private `redis-server` (./redis-server.ts) for one test file, with clients of its own: no
 * persistence unless asked (`appendOnly`). Tests that use it are skipped without the binary
 * locally and fail in CI (CI set).
 */

export { hasRedisServer, REDIS_SERVER_MISSING } from './redis-server.ts';

/** How many times Redis refused `channel` to a subscriber (its ACL LOG's entry for the channel counts them; Redis merges like entries). */
export async function refusedInAclLog(admin: Redis, channel: string): Promise<number> {
  for (const entry of (await admin.call('ACL', 'LOG')) as unknown[][]) {
    const fields = new Map<unknown, unknown>();
    for (let i = 0; i < entry.length; i += 2) fields.set(entry[i], entry[i + 1]);
    if (fields.get('reason') === 'channel' && fields.get('object') === channel) return Number(fields.get('count'));
  }
  return 0;
}

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
  /** A new client, closed by `stop`; to `url` when given (the server's, with a user and password). */
  connect(url?: string): Redis;
  stop(): Promise<void>;
  /** Stops the server (SIGTERM: with `appendOnly`, what it acknowledged is on disk) and keeps its port and directory. */
  pause(): Promise<void>;
  /** Starts the server again on the same port and directory (with `appendOnly`, with its data); `loaded: false`: before it has loaded it (redis-server.ts). */
  resume(options?: { loaded?: boolean }): Promise<void>;
  /** Makes the server silent (SIGSTOP: connections stay open, nothing is answered) until `thaw` (SIGCONT). */
  freeze(): void;
  thaw(): void;
}

export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  const server = await startRedisServer(options);
  const { url } = server;
  const clients: Redis[] = [];
  const connect = (to: string = url): Redis => {
    const client = new Redis(to, { maxRetriesPerRequest: 1 });
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
      await server.stop();
    },
    pause: () => server.pause(),
    resume: (resumeOptions) => server.resume(resumeOptions),
    freeze: () => void server.child.kill('SIGSTOP'),
    thaw: () => void server.child.kill('SIGCONT'),
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

/**
 * Runs `call` with every script it sends on `client` run twice, the second run's reply answered:
 * what ioredis does when a connection drops after Redis ran a command but before its reply came
 * (it sends the command again on the new connection). Both ways a script is sent are covered
 * (EVALSHA, and EVAL when Redis does not hold it yet).
 */
export async function sentTwice<T>(client: Redis, call: () => Promise<T>): Promise<T> {
  type Send = (...args: unknown[]) => Promise<unknown>;
  const sending = client as unknown as { evalsha: Send; eval: Send };
  const [evalsha, evalLua] = [sending.evalsha.bind(client), sending.eval.bind(client)];
  const twice =
    (send: Send): Send =>
    async (...args) => {
      await send(...args);
      return send(...args);
    };
  sending.evalsha = twice(evalsha);
  sending.eval = twice(evalLua);
  try {
    return await call();
  } finally {
    sending.evalsha = evalsha;
    sending.eval = evalLua;
  }
}

/**
 * The first command `call` sends on `client` (a script by default; `commands` names the methods
 * that send it) runs once and its reply is lost; `meanwhile` then runs (another replica's calls,
 * on connections of its own), and the command is sent again, its second reply the one `call`
 * gets: a reply lost on a dropped connection while another replica carried on, then ioredis
 * sending the command again on its new connection.
 */
export async function resentAfter<T>(client: Redis, call: () => Promise<T>, meanwhile: () => Promise<unknown>, commands: readonly string[] = ['evalsha', 'eval']): Promise<T> {
  type Send = (...args: unknown[]) => Promise<unknown>;
  const sending = client as unknown as Record<string, Send>;
  const originals = commands.map((name) => [name, (sending[name] as Send).bind(client)] as const);
  const restore = (): void => {
    for (const [name, send] of originals) sending[name] = send;
  };
  for (const [name, send] of originals) {
    sending[name] = async (...args) => {
      // A send that fails (NOSCRIPT: the adapter then sends EVAL) fails as it would.
      await send(...args);
      restore();
      await meanwhile();
      return send(...args);
    };
  }
  try {
    return await call();
  } finally {
    restore();
  }
}

/**
 * Runs `calls` at once, each of which sends one script on `client`, run once as sent; once every
 * call's script has run, each is sent again, in the order they ran, and its second reply is the
 * one the call gets: what ioredis does when a connection with several commands waiting for
 * their replies drops (it sends them all again, in order, on the new connection).
 */
export async function sentTogetherTwice<T>(client: Redis, calls: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  type Send = (...args: unknown[]) => Promise<unknown>;
  const sending = client as unknown as { evalsha: Send; eval: Send };
  const [evalsha, evalLua] = [sending.evalsha.bind(client), sending.eval.bind(client)];
  let ran = 0;
  let resend!: () => void;
  let fail!: (error: Error) => void;
  const allRan = new Promise<void>((resolve, reject) => {
    resend = resolve;
    fail = reject;
  });
  // A call that sends no script would hold the others for ever: fail them instead.
  const timer = setTimeout(() => fail(new Error(`sentTogetherTwice: ${ran} of ${calls.length} calls ran a script within 5 s`)), 5_000);
  const held =
    (send: Send): Send =>
    async (...args) => {
      // A send that fails (NOSCRIPT: the adapter then sends EVAL) fails as it would.
      await send(...args);
      if (++ran === calls.length) {
        clearTimeout(timer);
        resend();
      }
      await allRan;
      return send(...args);
    };
  sending.evalsha = held(evalsha);
  sending.eval = held(evalLua);
  try {
    return await Promise.all(calls.map((call) => call()));
  } finally {
    clearTimeout(timer);
    sending.evalsha = evalsha;
    sending.eval = evalLua;
  }
}
