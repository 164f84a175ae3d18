import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../src/http/coalesced-writes.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

/**
 * The answers of one event-loop turn are written together at its end (src/http/coalesced-writes.ts,
 * README "Performance"): the response ends at once, its bytes leave the socket in the
 * `setImmediate` phase, each connection's in order, and nothing is lost or swapped on the way.
 */

interface Observed {
  endedAtOnce: boolean;
  queuedAtOnce: number;
  queuedAfterTurn: number;
}

/** A plain Node server whose handler answers `body` and reports what the socket held right after `end()`. */
async function serverThat(coalesce: boolean, handle: (res: ServerResponse, url: string) => void = (res, url) => res.end(`answer to ${url}`)): Promise<{ server: Server; port: number; observed: Observed[] }> {
  const observed: Observed[] = [];
  const server = createServer((req, res) => {
    handle(res, req.url ?? '');
    const socket = res.socket as Socket | null;
    const seen: Observed = { endedAtOnce: res.writableEnded, queuedAtOnce: socket?.writableLength ?? -1, queuedAfterTurn: -1 };
    observed.push(seen);
    setImmediate(() => {
      // Queued after the batch's own setImmediate (made by end()): the batch has been written by now.
      seen.queuedAfterTurn = socket?.writableLength ?? -1;
    });
  });
  if (coalesce) coalesceWrites(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, observed };
}

describe('coalesced writes on a plain Node server', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('ends the response at once and writes its bytes at the end of the turn; without it they leave inside end()', async () => {
    for (const coalesce of [true, false]) {
      const { server, port, observed } = await serverThat(coalesce);
      servers.push(server);
      const res = await request(`http://127.0.0.1:${port}/one`);
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('answer to /one');
      expect(observed).toHaveLength(1);
      const [seen] = observed as [Observed];
      // Fastify reads writableEnded as "answered": it must be true at once either way.
      expect(seen.endedAtOnce).toBe(true);
      if (coalesce) {
        expect(seen.queuedAtOnce).toBeGreaterThan(0);
        expect(seen.queuedAfterTurn).toBe(0);
      } else {
        expect(seen.queuedAtOnce).toBe(0);
      }
    }
  });

  it('keeps each connection’s answers in order: 20 pipelined requests on one socket', async () => {
    const { server, port } = await serverThat(true);
    servers.push(server);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const requests = Array.from({ length: 20 }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: x\r\n${i === 19 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    socket.write(requests);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    await once(socket, 'end');
    const bodies = [...text.matchAll(/answer to \/p(\d+)/g)].map((m) => Number(m[1]));
    expect(bodies).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(20);
  });

  it('what was written before a destroy goes out before it, as without the batch (Node answers a headers timeout that way)', async () => {
    for (const coalesce of [true, false]) {
      const { server, port } = await serverThat(coalesce, (res, url) => {
        res.end(`answer to ${url}`);
        if (url === '/drop') res.socket?.destroy();
      });
      servers.push(server);
      const agent = new Agent({ connections: 8 });
      try {
        const answers = await Promise.all(['/a', '/drop', '/b', '/c'].map((path) => request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent }).then((r) => r.body.text())));
        expect(answers).toEqual(['answer to /a', 'answer to /drop', 'answer to /b', 'answer to /c']);
        // The server still answers afterwards.
        expect(await (await request(`http://127.0.0.1:${port}/after`, { dispatcher: agent })).body.text()).toBe('answer to /after');
      } finally {
        await agent.close();
      }
    }
  });

  it('a raw answer written and destroyed at once reaches the client whole', async () => {
    const { server, port } = await serverThat(true, (res) => {
      const socket = res.socket as Socket;
      socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy');
      socket.destroy();
    });
    servers.push(server);
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    await once(socket, 'close');
    expect(text).toBe('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy');
  });
});

describe('coalesced writes in the service', () => {
  let t: TestApp;
  let base: string;
  const agent = new Agent({ connections: 50, pipelining: 4 });

  beforeAll(async () => {
    t = await buildTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.close();
    await t.app.close();
  });

  it('400 concurrent creates over 50 connections (4 pipelined each): every client gets its own answer, and each answer is its intent', async () => {
    const answers = await Promise.all(
      Array.from({ length: 400 }, async (_, i) => {
        const res = await request(`${base}/v1/sim/intent`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': `cw-${i}` },
          body: JSON.stringify({ reservation_id: `res_cw_${i}`, amount: 1000 + i }),
        });
        return { i, status: res.statusCode, requestId: res.headers['x-request-id'], body: (await res.body.json()) as { payment_intent_id: string; status: string; next: string } };
      }),
    );
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.requestId).toBe(`cw-${answer.i}`);
      expect(answer.body).toEqual({ payment_intent_id: expect.stringMatching(/^pay_/), status: 'PENDING', next: 'poll' });
    }
    expect(new Set(answers.map((a) => a.body.payment_intent_id)).size).toBe(400);
    // Each answer named the intent made from its own request.
    const stored = await Promise.all(answers.map(async (a) => ((await (await request(`${base}/v1/sim/intents/${a.body.payment_intent_id}`, { dispatcher: agent })).body.json()) as { reservation_id: string; amount: number })));
    expect(stored.map((s) => [s.reservation_id, s.amount])).toEqual(answers.map((a) => [`res_cw_${a.i}`, 1000 + a.i]));
  });
});
