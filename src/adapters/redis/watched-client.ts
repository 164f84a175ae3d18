import { setTimeout as sleep } from 'node:timers/promises';
import { Command, type Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { createRedisClient, LOADED, LOADING_SEEN, redisLoading, shownLoading, shownRedisUrl, type RedisConnectionOptions, type RedisLoading } from './connection.ts';
import { errorFields, isCommandTimeout, isRedisRefusingUser, isRedisRefusingWrites, isRedisUnavailable, RedisNotServingError } from './unavailable.ts';
import { downReason, keptCertificateRefusal, lostDuringStart, oneLine, redisCause, RedisUnreachableError, refusedCredentials, resetRefusal, startRefusal, certificateRefusal } from './start-refusals.ts';

/**
 * How long a start waits for Redis to answer: a server that takes the connection and never
 * answers (a `rediss://` URL for a Redis without TLS, a port of something else) would otherwise
 * hold the start for good. A Redis that answers, loading its data set, is waited for however long.
 */
export const REDIS_START_TIMEOUT_MS = 8000;

/** How often Redis is asked whether it is still loading its data set, at start and after a reconnect. */
export const LOADING_POLL_MS = 250;
/** How often a start that waits for Redis to load says how far it is. */
const LOADING_LOG_EVERY_MS = 5000;

/** How long a close waits for Redis to answer QUIT before it drops the connection. */
const QUIT_WITHIN_MS = 2000;

/** How often a serving process asks Redis whether it still answers (a PING) and looks whether it has. */
const LIVENESS_EVERY_MS = 500;

/**
 * A PING unanswered this long, with nothing else read from Redis for as long: Redis is silent (paused,
 * swapping, cut off by the network with the connection still open, which no socket error tells). /readyz then fails and says so, the commands
 * in flight fail, and calls fail at once (`RedisNotServingError`, 503 STORE_UNAVAILABLE) until it
 * answers again.
 */
export const SILENT_AFTER_MS = 2000;

/**
 * A connection lost this long: calls fail at once (`RedisNotServingError`) instead of waiting for
 * reconnects in ioredis' offline queue. A call made within the first second of an outage still
 * waits for a couple of reconnects, so a blip of Redis costs no request.
 */
export const FAIL_FAST_AFTER_MS = 1000;

/**
 * ioredis' states between a lost connection and the next one serving, when a command would wait in
 * its offline queue: `connect` is a connection taken whose handshake has no answer yet.
 */
const RECONNECTING: ReadonlySet<string> = new Set(['close', 'reconnecting', 'connecting', 'connect']);

/** The reason a start gives while no attempt has failed yet. */
const NOT_CONNECTED = 'not connected yet';

/**
 * The process's one Redis client (STORE=redis), watched: its outages logged once each, and whether
 * Redis serves (reachable, and not loading its data set) known for /readyz.
 */
export interface WatchedRedis {
  readonly client: Redis;
  /** The URL without its password, for logs and /readyz. */
  readonly where: string;
  /** Why the store cannot be used now (Redis unreachable, or loading its data set), or undefined when it can. */
  unavailable(): string | undefined;
  /** The stores are made: from now on each reconnect, and each call refused while Redis loads, is watched. */
  serve(): void;
  /**
   * The whole start is over (every onReady hook has run): an outage is warned of from now on, and
   * one that began during the start and still lasts is warned of now. Before, a start that loses
   * Redis ends on its own line (`lostDuringStart`), not on a warning that it reconnects.
   */
  started(): void;
  /** `error` of the rest of the start, with the client closed, as one line. */
  failed(error: unknown): RedisUnreachableError;
  /** Closes the client: QUIT when connected (the replies of commands already sent still arrive), for at most QUIT_WITHIN_MS. */
  close(): Promise<void>;
  /**
   * `listener` hears the round trip, in seconds, of each answered liveness PING (every
   * LIVENESS_EVERY_MS while Redis serves, once the previous one is answered): how long a command of
   * this process waits for Redis now, behind its own queue and event loop too (the
   * `redis_ping_seconds` histogram). Not a PING sent, or answered, while Redis was found silent.
   */
  onPing(listener: (seconds: number) => void): void;
}

/**
 * Opens the client and waits until Redis serves: its first answer within REDIS_START_TIMEOUT_MS,
 * then, while it loads its data set, however long the load takes (each answer starts that wait
 * again), with a line on progress every 5 s. Done by buildApp before it registers the stores
 * plugin, outside any plugin, so Fastify's limit on a plugin's start (10 s) never cuts a long load
 * short. buildApp closes it with the app. Rejects with
 * `RedisUnreachableError` (the client closed) when Redis cannot be reached.
 */
export async function openRedis(options: Pick<RedisConnectionOptions, 'url' | 'tls'>, log: FastifyBaseLogger): Promise<WatchedRedis> {
  const where = shownRedisUrl(options.url);
  const client = createRedisClient(options);
  let lastError = NOT_CONNECTED;
  /** When the connection was lost (undefined while it is up); `warned`: this outage was logged. */
  let downSince: number | undefined;
  let warned = false;
  /** Redis has answered once (a start that never reached it says so: `failed`). */
  let connected = false;
  /** Until the start is over, a failure is the start's to tell (one line), not a warning. */
  let isStarted = false;
  /**
   * `why`: ioredis' error, or the words of a loss that gave none. Redis' words (`redis_error`), no
   * stack, as the rest of the outage's lines (`errorFields`); an error ioredis gave that is not Redis
   * away (`isRedisUnavailable`) keeps its stack (before 2026-12-08 each did).
   */
  const warnUnreachable = (why: Error | string): void => {
    warned = true;
    // A certificate refused at a reconnect (Redis restarted with another one) is the connection's
    // failure, not a bug: told in the start's words, which name the fix, without a stack.
    const refused = typeof why === 'string' ? why : certificateRefusal(where, why);
    const fields = refused === undefined ? errorFields(why) : { redis_error: refused };
    log.warn({ ...fields, redis: where }, 'Redis is unreachable: store calls answer 503 STORE_UNAVAILABLE until it is back; reconnecting');
  };
  /**
   * A reconnect ioredis makes on purpose (`reconnectOnError`: a READONLY reply, REDIS_URL's name
   * perhaps moved to a new primary; at most once a second): its close is no outage (a review: a
   * Redis refusing writes as a replica logged an outage every second).
   */
  let reconnectAsked = false;
  const asked = client.options.reconnectOnError;
  if (typeof asked === 'function') {
    const own = client.options;
    client.options.reconnectOnError = function (this: unknown, error: Error) {
      const answer = asked.call(this, error);
      // This client's own reconnect only: ioredis calls it on the client's options, and a duplicate
      // (the delivery queue's blocking reader) carries this function in its copy of them, whose
      // READONLY then made the next real loss of this connection untold (a review). Only the
      // answers that do reconnect (true, 1, 2) are one.
      if (this === own && (answer === true || answer === 1 || answer === 2)) reconnectAsked = true;
      return answer;
    };
  }
  // Without a listener ioredis prints every failed reconnect; one line per outage is enough.
  let lastErrorSeen: Error | undefined;
  /**
   * What a start's failed attempt whose certificate or alert TLS explains said (`certificateRefusal`):
   * an attempt's error varies (Redis' alert asking for a client certificate, or a reset when the
   * client's write comes first), so the start tells the one that names the fix, whichever attempt
   * was last. A reset alone is told only when it was the last (`resetRefusal`).
   */
  let certificateRefusedAtStart: string | undefined;
  /**
   * The attempt's TLS handshake ended (ioredis' `connect` is TLS' secureConnect with rediss://), and
   * whether it had when the last error came: a Redis asking for a client certificate resets the
   * connection after the handshake when the client's write comes before its alert (a test: 1 start
   * in 20 read "could not be reached (write ECONNRESET)", no attempt of its three having seen the alert).
   */
  let handshook = false;
  let handshookBeforeError = false;
  /**
   * A serving process's last certificate refusal of this outage, kept as its reason while the later
   * attempts end in a reset after the handshake or have their handshake unanswered
   * (`keptCertificateRefusal`); cleared by a connection ready.
   */
  let certificateRefusalKept: string | undefined;
  client.on('error', (error: Error) => {
    lastError = error.message;
    lastErrorSeen = error;
    const refused = certificateRefusal(where, error);
    if (!connected) certificateRefusedAtStart = refused ?? certificateRefusedAtStart;
    certificateRefusalKept = keptCertificateRefusal(refused, certificateRefusalKept, error, handshook);
    handshookBeforeError = handshook;
    downSince ??= Date.now();
    if (warned || !isStarted) return;
    warnUnreachable(error);
  });
  client.on('close', () => {
    handshook = false;
    const planned = reconnectAsked;
    reconnectAsked = false;
    // A lost connection is told as such, not as silence.
    unansweredSince = undefined;
    silentSince = undefined;
    // Each failed reconnect closes too: keep the reason the last attempt gave.
    if (downSince !== undefined || client.status === 'end') return;
    downSince = Date.now();
    lastError = 'the connection closed';
    lastErrorSeen = undefined;
    // Told as it is lost, not only at a failed reconnect: a Redis restarted (or a connection killed)
    // whose first reconnect succeeds gave no error, so neither line (a user test: the other parts'
    // errors during a restart, unexplained).
    if (!planned && !warned && isStarted && !closing) warnUnreachable('the connection closed');
  });

  /** What Redis said last about loading its data set, asked at each connection until it is done; undefined when it serves. */
  let loading: RedisLoading | undefined;
  /** A new connection whose first question (is Redis loading?) has no answer yet: not ready until it has. */
  let checking = false;
  let watching = false;
  /** Asked to watch while watching (a reconnect meanwhile): ask again once this watch ends. */
  let again = false;
  /** The start waits for a load itself (below); `closing`: the client closes. */
  let serving = false;
  let closing = false;
  const watchLoading = async (): Promise<void> => {
    if (watching) {
      again = true;
      return;
    }
    watching = true;
    let told = false;
    try {
      while (!closing && client.status === 'ready') {
        // A failed question (the connection lost again) is the status' to tell.
        loading = await redisLoading(client).catch(() => undefined);
        checking = false;
        if (loading === undefined) break;
        if (!told) log.warn({ redis: where }, `Redis is loading its data set (${shownLoading(loading)}): store calls answer 503 STORE_UNAVAILABLE until it is done`);
        told = true;
        await sleep(LOADING_POLL_MS, undefined, { ref: false });
      }
      if (told && loading === undefined && client.status === 'ready') {
        log.info({ redis: where }, 'Redis has loaded its data set');
        client.emit(LOADED);
      }
    } finally {
      watching = false;
      if (again && !closing) {
        again = false;
        void watchLoading();
      }
    }
  };
  client.on('ready', () => {
    connected = true;
    certificateRefusalKept = undefined;
    if (warned) log.info({ redis: where }, 'Redis is reachable again');
    downSince = undefined;
    unansweredSince = undefined;
    warned = false;
    if (!serving) return;
    checking = true;
    void watchLoading();
  });
  // A store call refused because Redis loads: a load on a live connection (a replica's resync) gets watched too.
  client.on(LOADING_SEEN, () => {
    if (serving) void watchLoading();
  });

  /** When the oldest PING still unanswered was sent (undefined when each was answered). */
  let unansweredSince: number | undefined;
  /**
   * When this process last read anything from Redis on the connection (replies to any command). A
   * PING waits behind every command sent before it: behind a long queue of this process's own (a
   * burst of 10,000 calls) it may go unanswered for seconds while Redis answers the others, busy
   * and not silent. Before 2026-12-04 such a PING alone made Redis silent, and every call in flight failed (503).
   */
  let heardAt = Date.now();
  /** When the connection now up (or in its handshake) was taken: ioredis' `connect`. */
  let connectedAt = Date.now();
  client.on('connect', () => {
    handshook = true;
    connectedAt = Date.now();
    client.stream.on('data', () => {
      heardAt = Date.now();
    });
  });
  /**
   * A connection taken whose first exchange has no answer yet (ioredis' `connect`), told as such, unless
   * Redis refused this connection's credentials at the last attempt: the new one sends the same, so the
   * same refusal is on its way, and told as it is while no connection is up. Before 2026-12-08 each
   * reconnect's handshake read "took the connection and has not answered yet" between two refusals, on
   * /readyz and as the 503s' cause (a test under load: a call made in that moment). The same after a
   * refusal of the client certificate (`certificateRefusalKept`): the new handshake sends the same one. For
   * SILENT_AFTER_MS at most: a handshake unanswered longer is a Redis that answers nothing (stopped,
   * hung), told as such, not as the refusal for as long as it stays so (a review: a Redis stopped after
   * a NOAUTH read "asks for a password" until it was continued).
   */
  const notAnsweredYet = (): boolean => client.status === 'connect' && ((!refusedCredentials(lastError) && certificateRefusalKept === undefined) || Date.now() - connectedAt >= SILENT_AFTER_MS);
  /** When Redis was found silent (a PING unanswered for SILENT_AFTER_MS); undefined while it answers. */
  let silentSince: number | undefined;
  const silentFor = (): string => `${Math.round((Date.now() - (silentSince ?? Date.now()) + SILENT_AFTER_MS) / 1000)} s`;
  /** ioredis' own send, past the gate below. */
  const send = client.sendCommand.bind(client);
  /** Commands sent (written, or queued for the connection) and maybe unanswered: failed when Redis is found silent. */
  let sent: Command[] = [];
  /** Who hears each PING's round trip (`onPing`). */
  let pingListener: ((seconds: number) => void) | undefined;
  const answered = (): void => {
    unansweredSince = undefined;
    if (silentSince === undefined) return;
    log.info({ redis: where, silent_for: silentFor() }, 'Redis answers again');
    silentSince = undefined;
  };
  const ping = (): void => {
    unansweredSince ??= Date.now();
    // Past the gate: its answer is what tells that Redis answers again.
    // An error reply (LOADING while it loads its data set) is an answer too; a time-out or a lost connection is not.
    const askedAt = unansweredSince;
    const sentAt = performance.now();
    const sentWhileSilent = silentSince !== undefined;
    const heardBack = (): void => {
      // A round trip that spanned a silence is the silence's (calls answered 503 at once meanwhile),
      // not a wait of any call: not observed (a user test: 1–10 s figures after Redis was back).
      if (!sentWhileSilent && silentSince === undefined) pingListener?.((performance.now() - sentAt) / 1000);
      answered();
    };
    void (send(new Command('ping')) as Promise<unknown>).then(heardBack, (error: unknown) => {
      if (error instanceof Error && error.name === 'ReplyError') heardBack();
      // Timed out (10 s) behind a queue Redis was still answering (not found silent): the next look asks again.
      else if (isCommandTimeout(error) && silentSince === undefined && unansweredSince === askedAt) unansweredSince = undefined;
    });
  };
  let liveness: NodeJS.Timeout | undefined;
  const watchLiveness = (): void => {
    liveness = setInterval(() => {
      sent = sent.filter((command) => !isSettled(command));
      if (closing) return;
      if (client.status !== 'ready') return failQueued();
      const since = unansweredSince;
      // While silent, a PING each time: the first one answered says Redis is back.
      if (since === undefined || silentSince !== undefined) ping();
      if (since === undefined || silentSince !== undefined || Date.now() - since < SILENT_AFTER_MS) return;
      // After a stall of this process the answer may have arrived unread: look again once pending I/O is handled.
      setImmediate(() => {
        if (closing || unansweredSince !== since || silentSince !== undefined || client.status !== 'ready') return;
        // Still answering the commands sent before the PING: busy, not silent (the PING waits on).
        if (Date.now() - heardAt < SILENT_AFTER_MS) return;
        silentSince = Date.now();
        log.warn({ redis: where }, `Redis has not answered for ${SILENT_AFTER_MS / 1000} s (paused, overloaded, or cut off by the network): store calls answer 503 STORE_UNAVAILABLE until it answers; those sent before may still run when it does`);
        // What was sent and is unanswered fails now (its reply, if Redis ever sends it, is dropped).
        const unanswered = sent;
        sent = [];
        for (const command of unanswered) if (!isSettled(command)) command.reject(new RedisNotServingError(`Redis at ${where} has not answered for ${silentFor()}`, { sent: written.has(command) }));
      });
    }, LIVENESS_EVERY_MS);
    liveness.unref();
  };
  /**
   * Past FAIL_FAST_AFTER_MS since the connection was lost, the commands waiting in ioredis' queue for
   * a connection (handed over in the loss's first second, or auto-pipelined behind a batch that was)
   * fail as never sent, as a call made then does at once: it is in the queue, so not written, and is
   * not written at the next connection either (`sendCommand` below skips it). Before 2026-12-06 they
   * waited for ioredis' `commandTimeout` (10 s) when a silent Redis took the new connection (its
   * handshake unanswered), and so did every call after them, queued behind their batch (a user test:
   * four creates made over 6 s all answered 503 10 s after the reconnect).
   */
  const failQueued = (): void => {
    if (downSince === undefined || Date.now() - downSince < FAIL_FAST_AFTER_MS) return;
    const { offlineQueue, prevCommandQueue } = client as unknown as Record<'offlineQueue' | 'prevCommandQueue', { toArray(): Array<{ command: Command }> } | null | undefined>;
    const reason = notAnsweredYet() ? `Redis at ${where} took the connection and has not answered yet` : downReason(where, lastError, certificateRefusalKept);
    for (const { command } of offlineQueue?.toArray() ?? []) {
      if (isSettled(command)) continue;
      written.delete(command);
      watchedRejects.add(command);
      command.reject(new RedisNotServingError(reason, { sent: false }));
    }
    // Written on the lost connection and unanswered: may have run (Redis may yet read them from the
    // old socket), as after a time-out, and no longer holding up the auto-pipelined calls after their
    // batch, which ioredis does not send before it settles (a review: they waited 10 s all the same).
    // Nor sent again at the next connection (ioredis' resend of its unfulfilled commands): answered
    // 503, each would then surely run, perhaps twice (a review counted 2 runs of each such INCR).
    if (prevCommandQueue == null) return;
    for (const { command } of prevCommandQueue.toArray()) {
      if (!isSettled(command)) command.reject(new RedisNotServingError(reason, { sent: true }));
    }
    (client as unknown as { prevCommandQueue: null }).prevCommandQueue = null;
  };
  /**
   * Why `command` is not sent now (Redis silent, or without a connection that answers for
   * FAIL_FAST_AFTER_MS), or undefined to send it. A new connection's handshake always goes (its
   * commands come alone, as ioredis sends them; one in a batch is the batch's).
   */
  const notServing = (command: Command, batched: boolean): string | undefined => {
    if (!serving || closing) return undefined;
    if (client.status === 'ready') return silentSince === undefined ? undefined : `Redis at ${where} has not answered for ${silentFor()}`;
    if (client.status === 'connect' && !batched && Command.checkFlag('HANDSHAKE_COMMANDS', command.name)) return undefined;
    if (!RECONNECTING.has(client.status)) return undefined;
    if (downSince !== undefined && Date.now() - downSince >= FAIL_FAST_AFTER_MS) return notAnsweredYet() ? `Redis at ${where} took the connection and has not answered yet` : downReason(where, lastError, certificateRefusalKept);
    return undefined;
  };
  /**
   * The decision on each auto-pipelined batch, taken at its first command: a batch's text goes to
   * the socket only once every command of it is written, so half a batch let through (the time
   * crossing FAIL_FAST_AFTER_MS as it is sent) would be queued and never written, and each later
   * reply would go to the wrong call.
   */
  const batches = new WeakMap<object, { reason: string | undefined }>();
  /**
   * Commands handed to ioredis with a connection up (`ready`, or `connect` for its handshake): written
   * to Redis, or may be. One handed over without (queued for the next connection) and given up on
   * before it was written fails as not sent (`RedisNotServingError`, the error ioredis gave it as the
   * cause), so the core knows it never ran (`mayHaveRun`); queued and then written at the reconnect
   * (ioredis sends its queue through here), it counts as written from then on.
   */
  const written = new WeakSet<Command>();
  const watchedRejects = new WeakSet<Command>();
  const toldIfNeverWritten = (command: Command): void => {
    if (client.status === 'ready' || client.status === 'connect') {
      written.add(command);
      return;
    }
    if (watchedRejects.has(command)) return;
    watchedRejects.add(command);
    const reject = command.reject.bind(command);
    command.reject = (error: Error): void => {
      reject(written.has(command) || error instanceof RedisNotServingError || !isRedisUnavailable(error) ? error : new RedisNotServingError(`Redis at ${where} did not take the command: not sent`, { cause: error }));
    };
  };
  // Every command of the client (the stores', scripts', auto-pipelined batches') passes here.
  client.sendCommand = ((command: Command, stream?: unknown, ...rest: unknown[]): unknown => {
    // Failed while queued for a connection (its time-out), so answered as never sent: ioredis still
    // sends its queue at the next connection, settled commands too, and it would run (a review).
    // One of a batch writes nothing in its place, so the batch's other commands still go. Such
    // skips are always a batch's first commands: ioredis arms `commandTimeout` in a batch's order,
    // and this code sets no time-out of its own on a command. A skip after a written command would
    // leave a gap in the batch that ioredis' resend after a second lost connection does not expect
    // (its replies then shift by one: a review built that with per-command time-outs).
    if (isSettled(command) && watchedRejects.has(command) && !written.has(command)) {
      if (typeof stream === 'object' && stream !== null && (stream as { isPipeline?: unknown }).isPipeline === true) (stream as { write(text: string): void }).write('');
      return command.promise;
    }
    let reason: string | undefined;
    if (typeof stream === 'object' && stream !== null) {
      let batch = batches.get(stream);
      if (batch === undefined) {
        batch = { reason: notServing(command, true) };
        batches.set(stream, batch);
      }
      reason = batch.reason;
    } else reason = notServing(command, false);
    if (reason === undefined) {
      if (serving) sent.push(command);
      toldIfNeverWritten(command);
      return Reflect.apply(send, client, [command, stream, ...rest]);
    }
    // Not sent now; sent before all the same when ioredis sends it again after a reconnect.
    command.reject(new RedisNotServingError(reason, { sent: written.has(command) }));
    return command.promise;
  }) as Redis['sendCommand'];

  const failed = (error: unknown): RedisUnreachableError => {
    closing = true;
    clearInterval(liveness);
    client.disconnect();
    // Redis answers, but takes no writes, or not this user's calls: say so, not that it could not be reached.
    const cause = redisCause(error);
    if (isRedisRefusingWrites(cause) || isRedisRefusingUser(cause)) return lostDuringStart(error, options.url) as RedisUnreachableError;
    const silentServer = error instanceof SilentRedis;
    const refused = silentServer || connected ? undefined : (certificateRefusedAtStart ?? resetRefusal(where, options.url, lastErrorSeen, handshookBeforeError, options.tls?.clientCertificate === true));
    if (refused !== undefined) return new RedisUnreachableError(refused, { cause: error });
    const why = silentServer
      ? `no answer within ${REDIS_START_TIMEOUT_MS / 1000} s${connected ? '' : ': is it Redis, does it speak TLS if and only if the URL is rediss://, and is it not loading a data set without answering meanwhile (its loading-process-events-interval-bytes)?'}`
      : lastError !== NOT_CONNECTED
        ? lastError
        : error instanceof Error
          ? error.message
          : String(error);
    return new RedisUnreachableError(startRefusal(where, oneLine(why)), { cause: error });
  };

  await untilSilentFor(REDIS_START_TIMEOUT_MS, async (heard) => {
    let toldAt = Number.NEGATIVE_INFINITY;
    for (;;) {
      // A PING unanswered within its time-out is asked again: the start's own bound is on silence, above.
      const progress = await redisLoading(client).catch((error: unknown) => (isCommandTimeout(error) ? UNANSWERED : Promise.reject(error)));
      if (progress === UNANSWERED) continue;
      heard();
      if (progress === undefined) return;
      if (Date.now() - toldAt >= LOADING_LOG_EVERY_MS) {
        log.info({ redis: where }, `Redis is loading its data set (${shownLoading(progress)}); the start waits for it`);
        toldAt = Date.now();
      }
      await sleep(LOADING_POLL_MS);
    }
  }).catch((error: unknown) => Promise.reject(failed(error)));

  return {
    client,
    where,
    unavailable() {
      // Connected, its first exchange unanswered (Redis silent, or loading a data set without answering meanwhile).
      if (notAnsweredYet()) return `Redis at ${where} took the connection and has not answered yet`;
      if (client.status !== 'ready') return `${downReason(where, lastError, certificateRefusalKept)}; reconnecting`;
      if (silentSince !== undefined) return `Redis at ${where} has not answered for ${silentFor()} (paused, overloaded, or cut off by the network)`;
      if (checking) return `Redis at ${where} took the connection; asking whether it serves`;
      return loading === undefined ? undefined : `Redis at ${where} is loading its data set (${shownLoading(loading)})`;
    },
    serve() {
      serving = true;
      watchLiveness();
    },
    started() {
      isStarted = true;
      if (downSince !== undefined && !warned && client.status !== 'ready') warnUnreachable(lastErrorSeen ?? lastError);
    },
    failed,
    onPing(listener) {
      pingListener = listener;
    },
    async close() {
      closing = true;
      clearInterval(liveness);
      if (client.status !== 'ready') {
        client.disconnect();
        return;
      }
      // A Redis that went silent (paused, or a partition) never answers QUIT: the close would hang.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_WITHIN_MS)));
      await Promise.race([client.quit().then(() => undefined, () => undefined), late]);
      clearTimeout(timer);
      if ((client.status as string) !== 'end') client.disconnect();
    },
  };
}

/** Whether ioredis has settled `command` (answered, failed or timed out): its `isSettled`, untyped. */
function isSettled(command: Command): boolean {
  return (command as Command & { isSettled?: boolean }).isSettled === true;
}

/** A start's PING that Redis did not answer within its time-out. */
const UNANSWERED = Symbol('unanswered');

/** Redis said nothing for REDIS_START_TIMEOUT_MS. */
class SilentRedis extends Error {
  override name = 'SilentRedis';
}

/**
 * `work`, rejected with `SilentRedis` once `silentMs` pass without a call of its `heard` (it is
 * called once at the start): a start's bound on a Redis that says nothing, not on one that answers.
 */
export async function untilSilentFor<T>(silentMs: number, work: (heard: () => void) => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let heard = (): void => undefined;
  const silent = new Promise<never>((_, reject) => {
    heard = () => {
      clearTimeout(timer);
      timer = setTimeout(() => reject(new SilentRedis('no answer')), silentMs);
    };
  });
  heard();
  try {
    return await Promise.race([work(heard), silent]);
  } finally {
    clearTimeout(timer);
  }
}
