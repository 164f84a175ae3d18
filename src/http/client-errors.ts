import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { corsHeaderLines } from './cors.ts';
import { renderedBody } from './error-handler.ts';
import type { ErrorShapes } from './error-shapes.ts';
import type { Problem } from './problem.ts';

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (the server's `clientError`): a
 * request line and headers over Node's 16 KiB (431), a request not received in time
 * (HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS: 408), bytes that are not HTTP/1.1 (400). Fastify's own answer is its
 * `{"error","message","statusCode"}`, no dialect's; here they are answered in the shape of the
 * dialect whose path the request line names, when the bytes the parser stopped on begin with it
 * (a request whose headers overflow, sent in one piece) or the parser had read the request's
 * headers (a 408 while its body was arriving), else in the default shape. The connection
 * is closed after the answer, as Node and Fastify close it; behind an answer whose head was sent
 * already (a request pipelined behind an event stream) nothing is written, only the connection
 * closed, as Node's own handler does. With CORS_ORIGINS set, an answer to a listed origin's request
 * (its `Origin` header among the bytes the parser stopped on, or among the headers it read) carries
 * the CORS headers every other answer carries. These requests never reach a route, so
 * the request metrics do not count them (the request log does not either).
 */

/** Node's error for a client error, with the bytes it was parsing (`rawPacket`, a Buffer; Fastify's type says otherwise). */
export interface ClientError extends Error {
  code?: string;
  rawPacket?: unknown;
}

/** How much of the received bytes is read for the request line: its path's prefix decides the dialect. */
const REQUEST_LINE_BYTES = 4096;
const REQUEST_LINE = /^[A-Z]{3,10} (\/[^ \r\n?#]*)/;
/** An `Origin` header line among the received bytes (Node's parser reads at most 16 KiB of headers). */
const ORIGIN_LINE = /\r\norigin:[ \t]*([^\r\n]*?)[ \t]*\r\n/i;
const HEADER_BYTES = 16 * 1024 + REQUEST_LINE_BYTES;

function problemOf(code: string | undefined): Problem {
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, code: 'HEADERS_TOO_LARGE', message: 'The request line and headers are larger than the server reads (16 KiB).' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request was not received in time (its headers within HTTP_HEADERS_TIMEOUT_MS, all of it within HTTP_REQUEST_TIMEOUT_MS).' };
  return { status: 400, code: 'BAD_REQUEST', message: `The request is not valid HTTP/1.1${code === undefined ? '' : ` (${code})`}.` };
}

/** The path of the request line the bytes begin with, or undefined (they are a later part of the request, or not HTTP). */
export function requestPath(raw: unknown): string | undefined {
  if (!Buffer.isBuffer(raw)) return undefined;
  return REQUEST_LINE.exec(raw.subarray(0, REQUEST_LINE_BYTES).toString('latin1'))?.[1];
}

/** The `Origin` the bytes the parser stopped on name, when they hold the request's headers (a request sent in one piece). */
export function requestOrigin(raw: unknown): string | undefined {
  if (!Buffer.isBuffer(raw)) return undefined;
  return ORIGIN_LINE.exec(raw.subarray(0, HEADER_BYTES).toString('latin1'))?.[1];
}

interface Incoming {
  url?: unknown;
  complete?: boolean;
  headers?: Record<string, unknown>;
}

/**
 * The request being received on the connection, when its headers were read but not all of its
 * body (a 408: the parser has stopped on no bytes then, but it knows the request line and headers).
 */
function receiving(socket: Socket): Incoming | undefined {
  const incoming = (socket as Socket & { parser?: { incoming?: Incoming | null } | null }).parser?.incoming;
  return incoming != null && incoming.complete !== true ? incoming : undefined;
}

/**
 * Whether an answer is under way on the connection: its head sent, its end not yet written (an
 * event stream, say, with a request pipelined behind it). An answer written now would land inside
 * that one's body, so the connection is only closed, as Node's own handler does. An answer that
 * has ended (its bytes queued, maybe not yet flushed) is followed by this one, in order.
 */
function answering(socket: Socket): boolean {
  const response = (socket as Socket & { _httpMessage?: { headersSent: boolean; writableEnded: boolean } | null })._httpMessage;
  return response != null && response.headersSent && !response.writableEnded;
}

/** The server's `clientError` handler (Fastify's `clientErrorHandler` option). */
export function clientErrorHandler(shapes: ErrorShapes, corsOrigins?: '*' | readonly string[]): (error: ClientError, socket: Socket) => void {
  return (error, socket) => {
    // Reset by the client: there is nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const problem = problemOf(error.code);
    const incoming = receiving(socket);
    const receivingUrl = typeof incoming?.url === 'string' ? incoming.url : undefined;
    const receivingOrigin = typeof incoming?.headers?.origin === 'string' ? incoming.headers.origin : undefined;
    const shape = shapes.forUrl(requestPath(error.rawPacket) ?? receivingUrl ?? '/');
    const cors = corsHeaderLines(corsOrigins, requestOrigin(error.rawPacket) ?? receivingOrigin);
    shapes.notify(problem);
    const status = shape.statusFor?.(problem) ?? problem.status;
    const body = JSON.stringify(renderedBody(shape, problem, randomUUID().replaceAll('-', '')));
    if (socket.writable && !answering(socket)) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${cors}Connection: close\r\n\r\n${body}`);
    }
    socket.destroy(error);
  };
}
