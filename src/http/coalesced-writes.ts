import type { Server } from 'node:http';
import { Socket } from 'node:net';

/**
 * The answers of one turn of the event loop go out together at its end (the `setImmediate`
 * phase, after the turn's I/O callbacks), not each as soon as its route has answered.
 *
 * Why: under load, a client and this server each sleep while the other works; an answer written
 * alone wakes the client on its own, and on a virtual machine a wake-up across cores costs far
 * more than the bytes (`--cpu-prof` under `make bench`: the socket write was 61 µs of the
 * service's ~200 µs per request, against 22 µs in the bare server, whose client never sleeps).
 * Written back to back, the answers of one turn wake the client once, and its next requests
 * arrive together. See README "Performance".
 *
 * How: each connection's socket hands its writes (`_write`, `_writev`: the stream implementer's
 * methods) to a batch that one `setImmediate` writes in order. The response itself ends at once
 * (`writableEnded`, which Fastify reads as "answered", is set by `end()`), so nothing above the
 * socket changes; its `finish` (the request's log line and metrics) comes once the bytes are
 * written. Writes of one socket keep their order: the stream does not call `_write` again before
 * the previous write's callback. A socket destroyed with writes waiting writes them first, as
 * Node's own "write, then destroy" answers (408, 400) expect.
 *
 * What it costs an answer: the rest of its turn, the time to run the I/O callbacks already ready
 * (requests that arrived meanwhile); with one request at a time, one `setImmediate`.
 */
export function coalesceWrites(server: Server): void {
  const batch = new WriteBatch();
  server.on('connection', (socket: Socket) => batch.adopt(socket));
}

type WriteCallback = (error?: Error | null) => void;
type Chunks = Array<{ chunk: unknown; encoding: BufferEncoding }>;

const socketWrite = Socket.prototype._write;
const socketWritev = Socket.prototype._writev as NonNullable<Socket['_writev']>;

class WriteBatch {
  // Parallel arrays, not a closure per write.
  #sockets: Array<Socket | null> = [];
  #data: unknown[] = [];
  #encodings: Array<BufferEncoding | undefined> = [];
  #callbacks: WriteCallback[] = [];

  readonly #flush = (): void => {
    const sockets = this.#sockets;
    const data = this.#data;
    const encodings = this.#encodings;
    const callbacks = this.#callbacks;
    this.#sockets = [];
    this.#data = [];
    this.#encodings = [];
    this.#callbacks = [];
    for (let i = 0; i < sockets.length; i++) {
      const socket = sockets[i];
      // Written early: its socket was destroyed meanwhile (see adopt).
      if (socket === null || socket === undefined) continue;
      write(socket, data[i], encodings[i], callbacks[i] as WriteCallback);
    }
  };

  adopt(socket: Socket): void {
    // Own properties shadow the prototype's methods for this socket only.
    socket._write = (chunk: unknown, encoding: BufferEncoding, callback: WriteCallback) => this.#add(socket, chunk, encoding, callback);
    socket._writev = (chunks: Chunks, callback: WriteCallback) => this.#add(socket, chunks, undefined, callback);
    // Node writes some answers and destroys the socket at once (a 408 on a headers timeout, a 400
    // for an unparsable request), and a response that fails midway destroys it after its first
    // bytes: what was written before a destroy goes out before it, as it would have without the batch.
    socket.destroy = (error?: Error) => {
      this.#writeNow(socket);
      return Socket.prototype.destroy.call(socket, error);
    };
  }

  /** Writes `socket`'s waiting writes now (each one's callback may hand over the next). */
  #writeNow(socket: Socket): void {
    for (let i = this.#sockets.indexOf(socket); i !== -1; i = this.#sockets.indexOf(socket)) {
      this.#sockets[i] = null;
      write(socket, this.#data[i], this.#encodings[i], this.#callbacks[i] as WriteCallback);
    }
  }

  #add(socket: Socket, data: unknown, encoding: BufferEncoding | undefined, callback: WriteCallback): void {
    if (this.#sockets.length === 0) setImmediate(this.#flush);
    this.#sockets.push(socket);
    this.#data.push(data);
    this.#encodings.push(encoding);
    this.#callbacks.push(callback);
  }
}

function write(socket: Socket, data: unknown, encoding: BufferEncoding | undefined, callback: WriteCallback): void {
  // A write fails through its callback (a closed socket: ERR_SOCKET_CLOSED), never by a throw.
  if (encoding === undefined) socketWritev.call(socket, data as Chunks, callback);
  else socketWrite.call(socket, data, encoding, callback);
}
