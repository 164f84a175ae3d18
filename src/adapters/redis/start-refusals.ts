import { StoreUnavailableError } from '../../core/errors.ts';
import { shownRedisUrl } from './connection.ts';
import { isRedisGivingUp, isRedisRefusingUser, isRedisRefusingWrites, RedisNotServingError, refusalHint } from './unavailable.ts';

/**
 * How a Redis that cannot be used is told, in words that name the fix: the start's one-line
 * refusals (unreachable, credentials, ACL, TLS: a certificate not trusted or for another name, a
 * client certificate asked for or refused, a handshake failure, TLS on one side only) and, while a
 * serving process reconnects, the reason `/readyz` gives. `watched-client.ts` decides when; this
 * file says what.
 */

/** A start that cannot reach Redis: told on one line, like a bad configuration. */
export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

/** What Redis said, under the STORE_UNAVAILABLE the guarded stores made of it. */
export function redisCause(error: unknown): unknown {
  return error instanceof StoreUnavailableError ? error.cause : error;
}

/**
 * `error`, which stopped a start, as a RedisUnreachableError when it says Redis went away after it
 * first answered (a call of a plugin's start given up by ioredis, or refused as STORE_UNAVAILABLE by
 * the guarded stores), or that its ACL refused a call (`NOPERM`), so that the start ends on one
 * line like an unreachable Redis; anything else
 * unchanged: a bug keeps its stack, and a socket error of the service's own (a HOST that does not
 * resolve, a port in use) is not Redis' (only ioredis' own words count, not bare socket codes).
 */
export function lostDuringStart(error: unknown, url: string): unknown {
  const cause = redisCause(error);
  // Refused by its ACL (a guarded store's call, STORE_UNAVAILABLE, or another's): said as the start's own check says it.
  if (isRedisRefusingUser(cause)) return new RedisUnreachableError(startRefusal(shownRedisUrl(url), oneLine((cause as Error).message)), { cause: error });
  if (!(error instanceof StoreUnavailableError) && !isRedisGivingUp(error)) return error;
  if (isRedisRefusingWrites(cause)) return new RedisUnreachableError(`Redis at ${shownRedisUrl(url)} refuses writes (${(cause as Error).message}); ${refusalHint((cause as Error).message)}`, { cause: error });
  // A command never written keeps ioredis' own error as its cause.
  const given = cause instanceof RedisNotServingError && cause.cause instanceof Error ? cause.cause : cause;
  const why = !(given instanceof Error) ? 'it stopped answering' : given.name === 'MaxRetriesPerRequestError' ? 'the connection was lost and could not be made again' : given.message;
  return new RedisUnreachableError(`Redis at ${shownRedisUrl(url)} stopped answering during the start (${why}); start it or set REDIS_URL`, { cause: error });
}

/** `text` on one line: OpenSSL's errors, among others, carry line breaks. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/**
 * Node's codes for a certificate whose issuer it does not trust: a private CA not given to it.
 * @see https://nodejs.org/api/tls.html#x509-certificate-error-codes
 */
const UNTRUSTED_CERTIFICATE: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
]);

/** What a Redis that asks for a client certificate needs of the process. */
const CLIENT_CERTIFICATE_FIX = 'set REDIS_TLS_CERT and REDIS_TLS_KEY to a client certificate and its key signed by a CA that Redis trusts (its tls-ca-cert-file)';

/** OpenSSL's alerts on the client's certificate but unknown ca (alerts 42 to 46), as Node's codes name them (OpenSSL 3's `SSL/TLS`, older `SSLV3`). */
const CLIENT_CERTIFICATE_ALERT = /^ERR_SSL_(?:SSL\/TLS|SSLV3)_ALERT_(BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|CERTIFICATE_UNKNOWN)$/;

/** Node's code for `error`, a connection attempt's (undefined when it has none). */
function codeOf(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}

/**
 * Why a connection attempt failed (`error`), when its TLS handshake is the reason: the certificate
 * not trusted or for another name, a client certificate asked for or refused, or TLS 1.2's bare
 * handshake failure; undefined otherwise. Told at a start, and as `/readyz`'s reason while a
 * serving process reconnects (`downReason`). Before 2026-12-08 these read "could not be reached
 * (…); start it or set REDIS_URL" with Node's words alone (its hint `--use-system-ca`, OpenSSL's raw
 * `tlsv13 alert certificate required`), none naming the fix.
 */
export function certificateRefusal(where: string, error: unknown): string | undefined {
  const code = codeOf(error);
  if (code === undefined) return undefined;
  // Node 24 adds a hint of its own to an untrusted certificate's words.
  const said = oneLine((error as Error).message).replace(/; if the root CA is installed locally.*$/, '');
  if (UNTRUSTED_CERTIFICATE.has(code)) {
    return `Redis at ${where} sent a certificate this process does not trust (${code}: ${said}); for a private CA set REDIS_TLS_CA (or NODE_EXTRA_CA_CERTS) to its certificate (a PEM file)`;
  }
  // TLS 1.3's alert 116: Redis' `tls-auth-clients yes`, and no certificate sent.
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return `Redis at ${where} asks for a client certificate (its tls-auth-clients yes); ${CLIENT_CERTIFICATE_FIX}`;
  // Alert 48: the certificate sent is signed by none of the CAs in Redis' tls-ca-cert-file (redis-server's
  // answer to another CA's certificate, on TLS 1.2 and 1.3 alike).
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA') {
    return `Redis at ${where} refused the client certificate of REDIS_TLS_CERT (TLS alert unknown ca: not signed by a CA it trusts); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA in its tls-ca-cert-file`;
  }
  // Alerts 42-46: Redis refused the client certificate sent for another reason than its CA (expired or
  // not yet valid, without clientAuth in its extended key usage, revoked). Before a review these read
  // "could not be reached (… ssl/tls alert certificate expired …); start it or set REDIS_URL".
  const alert = CLIENT_CERTIFICATE_ALERT.exec(code)?.[1];
  if (alert !== undefined) {
    return (
      `Redis at ${where} refused the client certificate of REDIS_TLS_CERT (TLS alert ${alert.toLowerCase().replaceAll('_', ' ')}); ` +
      'give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key for client authentication (within its dates, clientAuth among its extended key usages if it names any) signed by a CA in its tls-ca-cert-file'
    );
  }
  // Alert 40, all TLS 1.2 says of a client certificate asked for and not sent (no TLS 1.3 alert 116
  // there), and what it says of no cipher or version in common.
  if (code === 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE' || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return (
      `Redis at ${where} ended the TLS handshake with a handshake failure (TLS alert 40): on TLS 1.2, what a Redis that asks for a client certificate (its tls-auth-clients yes) says when none is sent ` +
      `(${CLIENT_CERTIFICATE_FIX}); else no TLS version or cipher is common to both (its tls-protocols, tls-ciphers)`
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `Redis at ${where} sent a certificate for another name (${said}); use in REDIS_URL a host name or address its certificate names`;
  return undefined;
}

/**
 * Why a start that never got an answer ends, when its last attempt (`error`) was reset before Redis
 * answered anything: TLS on one side only, a redis:// URL to a Redis that takes TLS only, or, after
 * a finished TLS handshake (`afterHandshake`), a Redis asking for a client certificate, or refusing
 * the one sent (`clientCertificate`: REDIS_TLS_CERT is set), whose alert the client's write came
 * before (the alert itself is `certificateRefusal`'s). Undefined otherwise. Before 2026-12-08 these
 * read "could not be reached (write ECONNRESET)".
 */
export function resetRefusal(where: string, url: string, error: unknown, afterHandshake: boolean, clientCertificate: boolean): string | undefined {
  if (codeOf(error) !== 'ECONNRESET') return undefined;
  // A reset is not TLS' alone: a Redis at its maxclients (some attempts see EPIPE, some a reset), a
  // proxy with no Redis behind it, a Redis going down. The line names TLS as the likely cause, not
  // the only one (a test: a plain Redis at maxclients was told "takes TLS only").
  if (url.startsWith('redis://')) {
    return `Redis at ${where} reset the connection before it answered anything (ECONNRESET): a Redis that takes TLS only does so to a redis:// URL (for TLS use rediss://), and so does one at its maxclients or a proxy with no Redis behind it; else start it or set REDIS_URL`;
  }
  if (!afterHandshake) return undefined;
  const reset = `Redis at ${where} reset the connection after the TLS handshake, before it answered anything (ECONNRESET)`;
  if (clientCertificate) {
    return `${reset}, as a Redis does that refuses the client certificate of REDIS_TLS_CERT (one not signed by a CA in its tls-ca-cert-file); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA it trusts, else see its log (its maxclients?)`;
  }
  return `${reset}, as a Redis that asks for a client certificate (its tls-auth-clients yes) does when none is sent; ${CLIENT_CERTIFICATE_FIX}, else see its log (its maxclients?)`;
}

/**
 * Why a start that reached no serving Redis ends, in words with what to do: Redis refused the
 * credentials or asked for some, refused this user a command or a key (its ACL), or could not be
 * reached at all.
 */
export function startRefusal(where: string, why: string): string {
  if (/^WRONGPASS /.test(why)) return `Redis at ${where} refused the user or password (${why}); set the ones it knows in REDIS_URL`;
  if (/^NOAUTH /.test(why)) return `Redis at ${where} asks for a password (${why}); put it in REDIS_URL: redis://:password@host, or redis://user:password@host for an ACL user`;
  // Redis 7.0's words for a key or command refused inside a script, and 7.2's (`ACL failure in script`).
  if (/^NOPERM |can't access at least one of the keys|can't run this command or subcommand|^ERR ACL failure in script/.test(why)) {
    return `Redis at ${where} refuses this user a command or key that paysim needs (${why}); give it the keys under REDIS_KEY_PREFIX and the commands the README names (Running several replicas)`;
  }
  return `Redis at ${where} could not be reached (${why}); start it or set REDIS_URL`;
}

/**
 * Why Redis cannot be used while the connection is down, from the last reconnect's error
 * (`lastError`, its words): a refusal of the credentials in the start's words (a password changed,
 * or now required, on a Redis restarted or reconfigured under a running replica: before 2026-12-07
 * told as Redis unreachable), a certificate or TLS alert in the start's words too (`keptRefusal`,
 * `keptCertificateRefusal`'s: this attempt's, or after a reset an earlier attempt's of the outage;
 * a Redis restarted with a certificate of another CA: before 2026-12-08 Node's words, whose hint
 * `--use-system-ca` is not paysim's fix), else unreachable. A reset alone is not told as TLS'
 * here: a Redis going away resets its connections too.
 */
export function downReason(where: string, lastError: string, keptRefusal: string | undefined): string {
  if (refusedCredentials(lastError)) return startRefusal(where, lastError);
  return keptRefusal ?? `Redis at ${where} is unreachable (${lastError})`;
}

/**
 * The certificate refusal (`certificateRefusal`'s words) a reconnecting process keeps as its reason
 * once an attempt ended with `error` (`afterHandshake`: its TLS handshake was over), given the one
 * kept so far (`kept`): the attempt's own refusal (`refused`, `certificateRefusal` of `error`); else the kept one when the attempt ended in a
 * reset after the handshake (on TLS 1.3 the client's first write races Redis' alert, and loses it
 * to a reset as often as not); else none (another error, a Redis down: ECONNREFUSED, is then the
 * truth). A connection taken whose handshake is unanswered keeps it too (`watched-client.ts`), and a
 * connection ready clears it. Before 2026-12-08 /readyz flipped between the refusal, "is unreachable
 * (write ECONNRESET)" and "took the connection and has not answered yet" over consecutive reads.
 */
export function keptCertificateRefusal(refused: string | undefined, kept: string | undefined, error: unknown, afterHandshake: boolean): string | undefined {
  if (refused !== undefined) return refused;
  // A write after Redis closed may meet EPIPE instead of a reset.
  const code = codeOf(error);
  return afterHandshake && (code === 'ECONNRESET' || code === 'EPIPE') ? kept : undefined;
}

/** Redis answered the connection's credentials (or their absence) with a refusal: `lastError`, its words. */
export function refusedCredentials(lastError: string): boolean {
  return /^(WRONGPASS|NOAUTH) /.test(lastError);
}
