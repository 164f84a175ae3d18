/**
 * The live-feed streams (`/console/events`) of logged-in sessions, ended when their session ends:
 * at once when it logs out on this replica, and within SESSION_CHECK_MS when it expires or logs out on
 * another (the revocation is shared, the streams are each replica's own). A session is checked
 * once per look whatever its number of streams; a store that cannot answer leaves the stream open
 * (the next look asks again). Without this an open stream went on sending change notices after a
 * log out, until the browser closed it.
 * @see issue 13 "Safety"
 */

/** How often open streams' sessions are looked at. */
export const SESSION_CHECK_MS = 5_000;

interface Tracked {
  expiresAt: number;
  ends: Set<() => void>;
}

export interface SessionStreamsDeps {
  now: () => number;
  /** Whether the session was logged out (on any replica). */
  isRevoked: (nonce: string, now: number) => Promise<boolean>;
}

export class SessionStreams {
  readonly #deps: SessionStreamsDeps;
  readonly #sessions = new Map<string, Tracked>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(deps: SessionStreamsDeps) {
    this.#deps = deps;
  }

  /** Tracks a stream of the session; `end` ends it. Returns what forgets it (its close). */
  add(nonce: string, expiresAt: number, end: () => void): () => void {
    let tracked = this.#sessions.get(nonce);
    if (tracked === undefined) {
      tracked = { expiresAt, ends: new Set() };
      this.#sessions.set(nonce, tracked);
    }
    tracked.ends.add(end);
    this.#timer ??= setInterval(() => void this.#check(), SESSION_CHECK_MS).unref();
    return () => this.#forget(nonce, end);
  }

  /** The session ended here (a log out): its streams end now. */
  endSession(nonce: string): void {
    const tracked = this.#sessions.get(nonce);
    if (tracked === undefined) return;
    for (const end of [...tracked.ends]) end();
    this.#sessions.delete(nonce);
    this.#idle();
  }

  /** Stops looking (the app closes; the feed ends the streams themselves). */
  close(): void {
    this.#sessions.clear();
    this.#idle();
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = this.#deps.now();
      for (const [nonce, tracked] of [...this.#sessions]) {
        const over = tracked.expiresAt <= now || (await this.#deps.isRevoked(nonce, now).catch(() => false));
        if (over) this.endSession(nonce);
      }
    } finally {
      this.#checking = false;
    }
  }

  #forget(nonce: string, end: () => void): void {
    const tracked = this.#sessions.get(nonce);
    if (tracked === undefined) return;
    tracked.ends.delete(end);
    if (tracked.ends.size === 0) this.#sessions.delete(nonce);
    this.#idle();
  }

  #idle(): void {
    if (this.#sessions.size > 0 || this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
