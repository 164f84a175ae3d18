import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A real webhook receiver for tests: a node:http server on 127.0.0.1 and a free port that records
 * every request and answers as the test's responder says (status, headers, body, a delay, or never).
 */

export interface ReceivedRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as received (utf8). */
  body: string;
  /** Real time (Date.now()) when the whole body had arrived. */
  receivedAt: number;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Real milliseconds to wait before answering. */
  delayMs?: number;
  /** Never answer (the socket is left open until the client gives up or `close()` destroys it). */
  hang?: boolean;
}

export type Responder = (req: ReceivedRequest) => Reply;

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly port: number;
  /** `origin + path` */
  url(path?: string): string;
  readonly requests: ReceivedRequest[];
  /** Replaces the responder for the requests still to come. */
  respond(responder: Responder): void;
  /** Resolves with the first `count` requests once that many have arrived; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Requests whose answer is still held (delayed or hanging). */
  readonly held: number;
  /** Stops listening and destroys every open socket, answering nothing more. */
  close(): Promise<void>;
}

export const ok: Responder = () => ({ status: 200, body: 'ok' });

export async function startReceiver(responder: Responder = ok): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();
  let current = responder;
  let held = 0;
  let closed = false;

  const notify = (): void => {
    for (const waiter of [...waiters]) waiter();
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received: ReceivedRequest = {
        index: requests.length,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      };
      requests.push(received);
      let reply: Reply;
      try {
        reply = current(received);
      } catch (error) {
        reply = { status: 599, body: String(error) };
      }
      const answer = (): void => {
        if (closed || res.destroyed) return;
        res.writeHead(reply.status ?? 200, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      };
      if (reply.hang === true) {
        held++;
        res.on('close', () => held--);
      } else if (reply.delayMs !== undefined && reply.delayMs > 0) {
        held++;
        const timer = setTimeout(() => {
          timers.delete(timer);
          held--;
          answer();
        }, reply.delayMs);
        timers.add(timer);
      } else {
        answer();
      }
      notify();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver: no port');
  const port = address.port;
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    port,
    url: (path = '/hooks') => `${origin}${path}`,
    requests,
    respond(next) {
      current = next;
    },
    get held() {
      return held;
    },
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (requests.length >= count) {
            finish();
            resolve(requests.slice(0, count));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`receiver ${origin}: timed out after ${timeoutMs} ms waiting for ${count} request(s); got ${requests.length}`));
        }, timeoutMs);
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await done;
    },
  };
}

/** Receivers for one test file: `start` one, `closeAll` (in an afterEach) closes every one started. */
export function receiverPool(): { start(responder?: Responder): Promise<Receiver>; closeAll(): Promise<void> } {
  const started: Receiver[] = [];
  return {
    async start(responder) {
      const rx = await startReceiver(responder);
      started.push(rx);
      return rx;
    },
    async closeAll() {
      for (const rx of started.splice(0)) await rx.close();
    },
  };
}

/** A port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `probe` (every 5 ms) until it returns something other than undefined; rejects after `timeoutMs`. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
