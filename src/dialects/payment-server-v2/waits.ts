/**
 * What `POST /api/v2/payments` waits for before it answers, as the original server did (it sent
 * the callback inside the request and answered PAYMENT_COMPLETED or PENDING by its outcome): the
 * payment's decision (V2_COMPLETE_DELAY_MS), then the first attempt of its callback, at most
 * `boundMs` (WEBHOOK_TIMEOUT_MS) after the decision. Then the route reads the payment's status.
 *
 * One wait per payment being created in this process, keyed by payment id; a repeat of the same
 * request that arrives meanwhile waits on the same one, so 200 concurrent identical requests all
 * answer what the first one answers. The waits end on bus events (the dialect's subscriber calls
 * `decided` and `settle`), so nothing polls; the bound is a real-time timer, as the attempt's own
 * timeout is. A wait is process-local: with several replicas, a repeat that reaches another one
 * while the first still waits follows the payment in the store (`follow`). While the store is unavailable (Redis away or
 * silent) no decision can be made, so the waits end once it has been so for a second (looked at
 * every 25 ms while any is open; a reconnect's blip ends none):
 * the route's read of the payment then answers 503 STORE_UNAVAILABLE, or, Redis back already,
 * its status then (PENDING), as the original answered a payment whose callback had not succeeded;
 * the payment is decided and its callback sent once the store is back, and a retry with the same
 * tx_id answers it. Before 2026-12-03 the request waited as long as the outage.
 *
 * With several replicas on one store, the decision's job and the callback's attempt may be another
 * replica's, whose events this process never sees: a wait whose decision is due (`expect`) and has
 * not ended by `LOOK_AFTER_DUE_MS` past it reads its payment (`look`), then again after twice as long
 * each time up to LOOK_GAP_MAX_MS (25, 50, 100, 200, 250, 250… ms), until it ends. That while other
 * processes may serve (`eager`: another replica or worker alive); alone, its own events end its
 * waits, and it reads only from LOOK_GAP_MAX_MS past the due time, every LOOK_GAP_MAX_MS (reading
 * from 25 ms cost one process about 2.4 reads a create with a receiver taking 60 ms, a review).
 * It ends: decided (approved and waiting for its callback, or declined), its bound starts from the
 * decision; completed (its callback acknowledged, or its first attempt over where that settles the
 * answer: any for a declined payment, a failed one for an approved payment) or gone (the store
 * lost it), it ends. One read at a time per wait; a wait its own events end first reads nothing. Before
 * 2026-12-03 such a wait ended only when the store went away (a helper: creates with a delay
 * unanswered after 70 s, their payments completed); before 2026-12-07 its first read was 250 ms past
 * the due time and the next ones 250 ms apart, so with two processes a create whose decision or
 * attempt the other made answered after 250–500 ms (a user test: p50 252 ms against 5 ms on memory). A failed first attempt on another replica
 * leaves the payment PENDING: the wait ends at its bound after the decision.
 * @see issue 10 "Endpoints"
 */

interface Wait {
  readonly id: string;
  readonly done: Promise<void>;
  resolve(): void;
  timer: NodeJS.Timeout | undefined;
  /** When its decision is due, on the service's clock (`expect`); undefined until the create says. */
  dueAt: number | undefined;
  /** When, in real time (`Date.now()`), its next read may be: `gap` after the last one ended. */
  nextReadAt: number;
  /** The real time from one read to the next, doubled after each up to LOOK_GAP_MAX_MS. */
  gap: number;
  /** A read of its payment is under way (`look`). */
  looking: boolean;
}

/**
 * What the store says of a payment waited for: undefined when it holds none (lost, or evicted);
 * `completed` when its answer is known (completed, or its callback's first attempt over as the
 * local events would have told: index.ts).
 */
export type LookedUp = { decidedAt: number | null; completed: boolean } | undefined;

/** How a wait reads its payment when its own events are late: the service's clock, and the read. */
export interface WaitLookUp {
  now(): number;
  look(id: string): Promise<LookedUp>;
  /** Whether another process may make a wait's decision or its callback's attempt now (`app.othersMayServe`); always, by default. */
  eager?(): boolean;
}

/** How often open waits look whether the store is unavailable, and read the payments of overdue ones due a read. */
const STORE_CHECK_MS = 25;
/** How long the store must have been unavailable, at every look, for the waits to end. */
const STORE_GONE_MS = 1000;
/** How long past its decision's due time (service clock) a wait not ended yet first reads its payment; also the first gap to the next read. */
export const LOOK_AFTER_DUE_MS = 25;
/** The longest gap between two reads of a wait's payment. */
export const LOOK_GAP_MAX_MS = 250;

export class CallbackWaits {
  readonly #waits = new Map<string, Wait>();
  readonly #boundMs: number;
  readonly #storeUnavailable: () => string | undefined;
  readonly #lookUp: WaitLookUp | undefined;
  /** Looks at the store while any wait is open. */
  #storeCheck: NodeJS.Timeout | undefined;
  /** Since when the store has been unavailable at every look (undefined: it was available at the last one). */
  #storeGoneSince: number | undefined;

  /**
   * `storeUnavailable`: why the store cannot be used now (`app.storeUnavailable`), undefined when it
   * can; `lookUp`: how an overdue wait reads its payment (none: waits end by their events only).
   */
  constructor(boundMs: number, storeUnavailable: () => string | undefined = () => undefined, lookUp?: WaitLookUp) {
    this.#boundMs = boundMs;
    this.#storeUnavailable = storeUnavailable;
    this.#lookUp = lookUp;
  }

  /** Waits open right now (creates answering soon). */
  get size(): number {
    return this.#waits.size;
  }

  /** The wait of a payment being created in this process; undefined when there is none. */
  pending(id: string): Promise<void> | undefined {
    return this.#waits.get(id)?.done;
  }

  /** Opens the wait of a payment about to be created: before the create, so no event of it can be missed. */
  open(id: string): Wait {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const wait: Wait = { id, done, resolve, timer: undefined, dueAt: undefined, nextReadAt: 0, gap: LOOK_AFTER_DUE_MS, looking: false };
    this.#waits.set(id, wait);
    if (this.#storeCheck === undefined) {
      this.#storeCheck = setInterval(() => {
        if (this.#storeUnavailable() === undefined) {
          this.#storeGoneSince = undefined;
          this.#lookAtOverdue();
        } else if (Date.now() - (this.#storeGoneSince ??= Date.now()) >= STORE_GONE_MS) this.close();
      }, STORE_CHECK_MS);
      this.#storeCheck.unref();
    }
    return wait;
  }

  /** The payment of `wait` is created, its decision due at `dueAt` (service clock): past it, the wait may read its payment. */
  expect(wait: Wait, dueAt: number): void {
    wait.dueAt = dueAt;
  }

  /**
   * The wait of a repeat whose payment existed with no wait here: its first request is another
   * replica's (or over). Unless the payment's answer is known already (completed, its callback's
   * first attempt over, or its bound passed since the decision), the wait follows the payment as an
   * overdue one does (reading it from the next store check on, its own events ending it sooner):
   * the repeat answers what the first request answers, as a twin in the same process does. Whether
   * it waits (when it does not, the wait is dropped). Before 2026-12-04 such a repeat answered the
   * payment's status at once (PENDING, while the first waited for PAYMENT_COMPLETED).
   */
  async follow(wait: Wait): Promise<boolean> {
    const lookUp = this.#lookUp;
    let found: LookedUp;
    try {
      found = await lookUp?.look(wait.id);
    } catch (error) {
      this.drop(wait);
      throw error;
    }
    // Ended meanwhile (the store went away, the app closes): nothing to follow.
    if (this.#waits.get(wait.id) !== wait) return false;
    const now = lookUp?.now() ?? 0;
    // Another replica's clock may be ahead of this one's: a decision "in the future" was made just now.
    const sinceDecided = found?.decidedAt == null ? 0 : Math.max(0, now - found.decidedAt);
    if (found === undefined || found.completed || (found.decidedAt !== null && sinceDecided >= this.#boundMs)) {
      this.drop(wait);
      return false;
    }
    // Read again from the next gap on (just read: not at the next check).
    wait.dueAt = now - LOOK_GAP_MAX_MS;
    this.#afterRead(wait, lookUp?.eager?.() ?? true);
    if (found.decidedAt !== null) this.decided(wait.id, sinceDecided);
    return true;
  }

  /** Ends a wait that turned out not to be needed (the tx_id had a payment already, or the create failed). */
  drop(wait: Wait): void {
    if (this.#waits.get(wait.id) === wait) this.#end(wait);
  }

  /**
   * The payment was decided and its callback is on its way: the wait ends at its first attempt, or
   * after the bound (counted from now, or what is left of it `sinceMs` after the decision).
   */
  decided(id: string, sinceMs = 0): void {
    const wait = this.#waits.get(id);
    if (wait === undefined || wait.timer !== undefined) return;
    wait.timer = setTimeout(() => this.settle(id), Math.max(0, this.#boundMs - sinceMs));
    wait.timer.unref();
  }

  /** Ends the wait of a payment: its callback's first attempt is done, or the payment completed. */
  settle(id: string): void {
    const wait = this.#waits.get(id);
    if (wait !== undefined) this.#end(wait);
  }

  /** Ends every wait (the app closes). */
  close(): void {
    for (const wait of [...this.#waits.values()]) this.#end(wait);
  }

  /** Reads the payment of each wait past its due time that is not reading already, and ends or bounds it by what it finds. */
  #lookAtOverdue(): void {
    const lookUp = this.#lookUp;
    if (lookUp === undefined) return;
    const now = lookUp.now();
    const realNow = Date.now();
    const eager = lookUp.eager?.() ?? true;
    const firstAfter = eager ? LOOK_AFTER_DUE_MS : LOOK_GAP_MAX_MS;
    for (const wait of this.#waits.values()) {
      if (wait.looking || wait.dueAt === undefined || now < wait.dueAt + firstAfter || realNow < wait.nextReadAt) continue;
      wait.looking = true;
      const next = (): void => {
        wait.looking = false;
        this.#afterRead(wait, eager);
      };
      lookUp.look(wait.id).then(
        (found) => {
          next();
          if (this.#waits.get(wait.id) !== wait) return;
          if (found === undefined || found.completed) this.#end(wait);
          else if (found.decidedAt !== null) this.decided(wait.id, Math.max(0, lookUp.now() - found.decidedAt));
        },
        // A failed read (the store away): read again after the next gap, or the store's own bound ends the wait.
        next,
      );
    }
  }

  /**
   * Spaces the next read of `wait`: `gap` later, doubled for the one after (eager), or
   * LOOK_GAP_MAX_MS later. In real time: the gaps space reads of the store, whatever the service's
   * clock does (a test's manual clock, TIME_SCALE).
   */
  #afterRead(wait: Wait, eager: boolean): void {
    wait.nextReadAt = Date.now() + (eager ? wait.gap : LOOK_GAP_MAX_MS);
    wait.gap = Math.min(wait.gap * 2, LOOK_GAP_MAX_MS);
  }

  #end(wait: Wait): void {
    this.#waits.delete(wait.id);
    if (wait.timer !== undefined) clearTimeout(wait.timer);
    wait.resolve();
    if (this.#waits.size === 0) {
      clearInterval(this.#storeCheck);
      this.#storeCheck = undefined;
      this.#storeGoneSince = undefined;
    }
  }
}

export type { Wait };
