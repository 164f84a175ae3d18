import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serverProcesses } from '../helpers/child.ts';

/**
 * Connections that never complete their request: they are timed out (HTTP_HEADERS_TIMEOUT_MS,
 * HTTP_REQUEST_TIMEOUT_MS) and never hold the shutdown (issue 7, defect 4).
 */

const servers = serverProcesses();
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await servers.killAll();
});

/** A connection that sends the start of a request and never the rest; resolves with what it got back when it closes. */
function halfRequest(origin: string): { closed: Promise<{ text: string; at: number }> } {
  const { hostname, port } = new URL(origin);
  const socket = connect(Number(port), hostname, () => socket.write('GET /healthz HTTP/1.1\r\nHost: paysim\r\nX-Slow: '));
  sockets.push(socket);
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { closed: new Promise((resolve) => socket.on('close', () => resolve({ text, at: Date.now() }))) };
}

describe('a connection that never completes its request', () => {
  it('is answered 408 and closed after HTTP_HEADERS_TIMEOUT_MS', async () => {
    const server = servers.start({ HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_REQUEST_TIMEOUT_MS: '1000' });
    const origin = await server.origin();
    const started = Date.now();
    const { text, at } = await halfRequest(origin).closed;
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    // The headers timeout, checked once a second at most.
    expect(at - started).toBeGreaterThanOrEqual(450);
    expect(at - started).toBeLessThan(3000);
    // The server is still serving.
    expect((await fetch(`${origin}/healthz`)).status).toBe(200);
  });

  it('does not hold the shutdown: SIGTERM ends the process with exit 0 and closes the connection', async () => {
    // Long timeouts, so only the shutdown can end the connection.
    const server = servers.start({ SHUTDOWN_TIMEOUT_MS: '1000', HTTP_HEADERS_TIMEOUT_MS: '60000', HTTP_REQUEST_TIMEOUT_MS: '60000' });
    const origin = await server.origin();
    const stuck = halfRequest(origin);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server has the connection
    const sentAt = Date.now();
    server.kill('SIGTERM');
    expect(await server.waitForExit(10_000)).toEqual({ code: 0, signal: null });
    expect(server.exitedAt! - sentAt).toBeLessThan(4000);
    await stuck.closed;
    expect(server.lines.map((l) => l.msg)).toContain('shutdown complete');
  });
});
