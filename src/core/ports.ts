import type { Booking, BookingCounts, BookingPaymentIntent, BookingStatus, InboxEvent, PaymentKind } from './bookings/booking.ts';
import type { Delivery, DeliveryChange, DeliveryStatus, Subject } from './deliveries.ts';
import type { FaultRuleStore } from './faults/ports.ts';
import type { FluxPayStore, FluxPaySubscriptionStore } from './fluxpay/ports.ts';
import type { SubscriptionStore } from './subscriptions/ports.ts';
import type { RateLimitStore } from './rate-limit/ports.ts';
import type { WaitingRoomStore } from './waiting-room/ports.ts';
import type { BeginResult, IdempotencyNote, StoredResponse } from './idempotency.ts';
import type { Intent, IntentStatus } from './intents/intent.ts';
import type { LedgerBalance, LedgerEntry, LedgerTransaction } from './ledger.ts';
import type { HoldOutcome, SeatCounts, SeatView } from './seats.ts';
import type { V2Completion, V2Payment, V2Status } from './v2/payment.ts';

/**
 * The store ports: one async interface per kind of state the service keeps. Core talks only to
 * these; `adapters/memory` implements them for one process, and any other back end implements the
 * same interfaces and passes the same contract suites (test/adapters/).
 *
 * Rules every adapter keeps:
 * - Each method is one atomic operation: a guarded transition compares and sets in one step; an
 *   operation that changes several things (a refund that checks what is left, a seat hold of N
 *   seats, a ledger transaction with its entries, a payment result with its inbox event) changes
 *   all of them or none. Core never reads, awaits, and then writes what it read.
 * - Records go in and come out as copies: a caller can never change stored state by mutating
 *   what it was given or what it passed in.
 * - Stores are bounded (a maximum size and a TTL). Unfinished work (a PENDING intent, a pending
 *   booking, an undelivered webhook, an unprocessed inbox event, a PENDING /api/v2 payment) is
 *   never evicted: an insert that finds no room answers that it is full instead.
 */

export interface Page<T> {
  data: T[];
  /** The id to pass as `cursor` for the next page; null when there is none. */
  nextCursor: string | null;
}

export interface PageQuery {
  limit: number;
  /** The id of the last record of the previous page (ids sort in creation order). */
  cursor?: string | undefined;
}

/** `key_lost`: an insert under an Idempotency-Key (`IdempotencyNote`) whose claim is no longer the key's: nothing written. */
export type InsertOutcome = { ok: true } | { ok: false; reason: 'full' | 'key_lost' };

/**
 * What a store that listens for other processes' notices says of its subscription (with Redis:
 * pub/sub, which an ACL can refuse).
 */
export interface ListeningTold {
  /** Refused, with why (Redis' answer) and on which channel: no notice comes until allowed; told once until then. */
  onRefused?: ((reason: string, channel: string) => void) | undefined;
  /** Allowed after a refusal (the ACL mended): notices come again. */
  onAllowed?: ((channel: string) => void) | undefined;
  /**
   * This replica's notice on the channel refused (its PUBLISH), with why: the other replicas learn
   * of its changes by their periodic read until one is taken; told once until then, and not when
   * the channel's subscription is refused already (that warning says how to mend both).
   */
  onSendRefused?: ((reason: string, channel: string) => void) | undefined;
  /** A notice taken after a refusal of its PUBLISH: the others hear of this replica's changes at once again. */
  onSendAllowed?: ((channel: string) => void) | undefined;
}

/** How full a bounded store is, for the `store fill` gauges. */
export interface StoreStats {
  size: number;
  max: number;
}

/** The result of a guarded transition: the record as it now is, or as it was found (undefined: unknown). */
export type Transition<T> = { ok: true; record: T } | { ok: false; current: T | undefined };

// ── intents ──────────────────────────────────────────────────────────────────────────────────

export interface IntentQuery extends PageQuery {
  reservationId?: string | undefined;
  status?: IntentStatus | undefined;
}

export interface IntentPatch {
  /** Never PENDING: an intent does not go back to it (the stores' eviction order counts on that). */
  status: Exclude<IntentStatus, 'PENDING'>;
  failureCode?: string | null | undefined;
  decidedAt?: number | null | undefined;
  updatedAt: number;
}

export type RefundOutcome =
  /** `at`: when the refund was made (earlier than the call's `now` when the call found it made already, by its token). */
  | { kind: 'refunded'; intent: Intent; amount: number; at: number }
  | { kind: 'not_found' }
  | { kind: 'invalid_state'; intent: Intent }
  | { kind: 'exceeds'; intent: Intent; left: number };

export interface IntentStore {
  /** Adds a new intent; full when the bound is reached and every stored intent is PENDING. */
  insert(intent: Intent): Promise<InsertOutcome>;
  /**
   * Optional, for a store that shares its back end with the scheduler's: `insert` and scheduling
   * `job` as one atomic operation (both or, when full, neither). Callers without it schedule, then insert.
   * With `note` (a request under an Idempotency-Key), the intent's id is noted on the key in the same step.
   */
  insertScheduled?: ((intent: Intent, job: Job, note?: IdempotencyNote) => Promise<InsertOutcome>) | undefined;
  get(id: string): Promise<Intent | undefined>;
  /** Applies the intent's planned outcome (status, failure code, decidedAt) if it is still PENDING. */
  decide(id: string, now: number): Promise<Transition<Intent>>;
  /** Sets `patch` if the intent's status is one of `from`. */
  transition(id: string, from: readonly IntentStatus[], patch: IntentPatch): Promise<Transition<Intent>>;
  /**
   * Refunds `amount` (default: all that is left) of an APPROVED or PARTIALLY_REFUNDED intent, never more than is left.
   * `token` (a shared store): the refund's own name, by which a call made again (a keyed retry whose
   * first answer was lost) finds the refund made and answers it instead of refunding again.
   */
  refund(id: string, amount: number | undefined, now: number, token?: string): Promise<RefundOutcome>;
  /**
   * Optional, for a store that shares its back end with the scheduler's: a cancel (PENDING →
   * CANCELLED at `now`, as `transition`) and, when it succeeds, `job` scheduled, as one atomic operation.
   */
  cancelScheduled?: ((id: string, now: number, job: Job) => Promise<Transition<Intent>>) | undefined;
  /**
   * Optional, likewise: `refund` and, when it refunds, `job` scheduled under the key
   * `refundJobKey(job.key, refunded in all after it, its amount, now)`, as one atomic operation.
   */
  refundScheduled?: ((id: string, amount: number | undefined, now: number, job: Job, token?: string) => Promise<RefundOutcome>) | undefined;
  /** Newest first. A page may hold fewer than `limit` records and still have a `nextCursor` when a filter's scan was cut short. */
  list(query: IntentQuery): Promise<Page<Intent>>;
  /** How many stored intents are in each status, over all of them (kept as they change: cheap). */
  counts(): Promise<Record<IntentStatus, number>>;
  stats(): Promise<StoreStats>;
  /** Evicts final intents older than the TTL; returns how many. */
  sweep(now: number): Promise<number>;
}

// ── idempotency keys ─────────────────────────────────────────────────────────────────────────

export interface IdempotencyStore {
  /** Claims `key` in `scope` for a request with this body fingerprint, or says why not. */
  begin(scope: string, key: string, fingerprint: string, now: number): Promise<BeginResult>;
  /** Stores the response of the request whose `begin` made `claim`; nothing when the key is no longer that claim. */
  complete(scope: string, key: string, claim: string, response: StoredResponse): Promise<void>;
  /**
   * Forgets the started request whose `begin` made `claim` (it ended without a response worth
   * replaying, a 5xx), so it can be retried; nothing when the key is no longer that claim.
   */
  release(scope: string, key: string, claim: string): Promise<void>;
  /**
   * This process will not settle `claim` (the store could not take its settle, and it is not
   * tried again): it no longer counts as running here. The key stays as the store has it.
   */
  abandon(claim: string): void;
  /** Where another store's write notes what the request of `claim` made (a shared store; none: nothing is noted, and a retry runs again). */
  noteOf?(scope: string, key: string, claim: string): IdempotencyNote;
  /**
   * Notes `made` on the key of `note` while its claim is still the entry's, before the request
   * writes it (a shared store, for a write that cannot note it itself): a retry after a lost
   * answer resumes it (`BeginResult` `resume`). False, noting nothing, when the claim is no longer
   * the entry's (another request took the key): the request must not write.
   */
  note?(note: IdempotencyNote, made: string): Promise<boolean>;
  stats(): Promise<StoreStats & { bytes: number }>;
  sweep(now: number): Promise<number>;
}

// ── bookings and their events inbox ──────────────────────────────────────────────────────────

export type BeginPaymentOutcome =
  /** `tookOver`: a payment in flight past its `lostAfter` was ended first (its replica lost). */
  | { kind: 'started'; booking: Booking; tookOver?: true }
  | { kind: 'not_found' }
  | { kind: 'forbidden'; booking: Booking }
  /** The hold had lapsed: the booking is now expired (and the caller releases its seats). */
  | { kind: 'expired_now'; booking: Booking }
  | { kind: 'expired'; booking: Booking }
  | { kind: 'already_processed'; booking: Booking };

/** `transition`'s outcome: `tookOver`, a lost payment was ended first; `expiredNow`, refused because the booking expired in this step (the caller finishes the expiry). */
export type BookingTransition = (Transition<Booking> & { tookOver?: true; expiredNow?: undefined }) | { ok: false; current: Booking; tookOver?: true; expiredNow: true };

export interface BookingStore {
  /**
   * Adds a pending booking, evicting the oldest finished ones beyond the bound (their ids are
   * returned, so their ledger transactions can go too); full when nothing can go.
   */
  insert(booking: Booking): Promise<{ ok: true; evicted: string[] } | { ok: false; reason: 'full' }>;
  get(id: string): Promise<Booking | undefined>;
  /** A user's bookings, newest first. */
  listForUser(userId: string, page: PageQuery): Promise<Page<Booking>>;
  /** Every stored booking, newest first (whatever its user or status). */
  listRecent(page: PageQuery): Promise<Page<Booking>>;
  /**
   * Marks a payment in flight on the caller's pending, unpaid booking whose hold has not lapsed
   * (a lapsed one is expired in the same step, `settledAt` = `now`). Of two concurrent calls exactly one starts.
   * `token`: this payment's (new when unset), kept with it while in flight: `abortPayment(id, token)`
   * and `recordPayment(…, token)` end this payment only. `lostAfter`: when this payment, still in
   * flight, is taken to have lost its process (a replica killed during its delay), as its own
   * process judges it (its delay's bound and a lease); a later begin (`now` past it) ends it first
   * and begins in its place. Unset, this payment in flight refuses every other, as one begun by an
   * earlier version does.
   */
  beginPayment(id: string, userId: string, kind: PaymentKind, now: number, token?: string, lostAfter?: number): Promise<BeginPaymentOutcome>;
  /**
   * Ends the payment in flight: records its result (and the method it was paid with, when given)
   * and writes its inbox event, in one step. Undefined unless the booking is pending with a payment
   * in flight: with `begunWith` (its `beginPayment`'s token), that very payment, not one begun since
   * in its place (`lostAfter`).
   */
  recordPayment(id: string, paymentIntent: BookingPaymentIntent, event: InboxEvent, paymentMethod?: string, begunWith?: string): Promise<Booking | undefined>;
  /**
   * Ends a payment in flight without a result (its guards failed after the delay). With `begunWith`
   * (the token its `beginPayment` was given), only while that payment is the one in flight: a try
   * made again, however late (its answer lost, or the store away meanwhile), never ends a payment
   * begun since. Without, whichever is in flight (the expiry job's backstop, once the hold passed).
   */
  abortPayment(id: string, begunWith?: string): Promise<void>;
  /**
   * Sets `to` (and `settledAt` = `at`) if the booking is in one of `from` and no payment is in
   * flight (`unpaid`: and its payment is PENDING). With `unpaid` (a cancel), a payment in flight
   * past its `lostAfter` (`beginPayment`) is ended first, as a later begin would end it
   * (`tookOver`), and a booking whose hold has lapsed (`at` >= `expiresAt`) is expired instead
   * (`settledAt` = `at`), refused with `expiredNow`, as a begin would expire it.
   */
  transition(id: string, from: readonly BookingStatus[], to: BookingStatus, at: number, options?: { unpaid?: boolean }): Promise<BookingTransition>;
  /** Expires (`settledAt` = `now`) a pending, unpaid booking without a payment in flight whose hold has lapsed; the booking if it did. */
  expireIfDue(id: string, now: number): Promise<Booking | undefined>;
  /** Marks an inbox event processed; `first` is false when it already was. */
  markEventProcessed(eventId: string, now: number): Promise<{ first: boolean; event: InboxEvent } | undefined>;
  /** One inbox event by id. */
  event(eventId: string): Promise<InboxEvent | undefined>;
  /** A booking's inbox events, in the order written. */
  events(bookingId: string): Promise<InboxEvent[]>;
  counts(): Promise<BookingCounts>;
  stats(): Promise<StoreStats>;
  /**
   * Evicts finished bookings (no payment in flight, every inbox event processed) older than the
   * TTL, with their inbox events; returns their ids so their ledger transactions can go too.
   */
  sweep(now: number): Promise<string[]>;
  /**
   * Ids of evicted bookings (by `insert` or `sweep`, in the same step) whose ledger transactions
   * may still be there: at most `limit`, until `forgotten` takes them off. A process stopped
   * between an eviction and the removal of its ledger transactions leaves them here for the next.
   */
  toForget(limit: number): Promise<string[]>;
  /** Takes ids off `toForget`: their ledger transactions are gone. */
  forgotten(ids: readonly string[]): Promise<void>;
}

// ── seats ────────────────────────────────────────────────────────────────────────────────────

export interface SeatStore {
  /** Locks `quantity` seats of a performance for a booking until `until`, all or nothing (see core/seats.ts for which). */
  hold(performanceId: string, quantity: number, bookingId: string, until: number): Promise<HoldOutcome>;
  /** Frees every seat of a booking, locked or reserved; [] when it holds none (releasing is idempotent). */
  release(bookingId: string): Promise<string[]>;
  /**
   * Frees a booking's locked seats only; seats it has reserved (sold) stay its own. For a booking
   * that no longer exists, so that sold seats are never freed; [] when it holds none locked.
   */
  releaseHeld(bookingId: string): Promise<string[]>;
  /** Turns a booking's locked seats into reserved ones; [] when it holds none. Idempotent. */
  reserve(bookingId: string): Promise<string[]>;
  /**
   * The booking was evicted: its entry goes, unless it still has locked seats (they are freed
   * first, by `releaseHeld`); its seats stay as they are, sold ones sold. Idempotent.
   */
  forget(bookingId: string): Promise<void>;
  /** Every seat of a performance, front row first; undefined for an unknown performance. */
  seatsOf(performanceId: string): Promise<SeatView[] | undefined>;
  /** Counts of one performance (undefined when unknown), or summed over all. */
  counts(performanceId?: string): Promise<SeatCounts | undefined>;
}

// ── ledger ───────────────────────────────────────────────────────────────────────────────────

export interface LedgerStore {
  /**
   * Writes a balanced transaction, all entries or none. Idempotent by reference: when the
   * reference already has a transaction, that one is returned and nothing is written.
   * Throws when the entries do not balance.
   */
  post(transaction: LedgerTransaction): Promise<LedgerTransaction>;
  /** Entries in the order written: all of them, or one reference's. */
  entries(reference?: string): Promise<LedgerEntry[]>;
  balances(): Promise<LedgerBalance[]>;
  /** Total debits minus total credits: always 0. */
  imbalance(): Promise<number>;
  /** Removes a reference's transactions (every entry of each); returns how many entries went. */
  removeReference(reference: string): Promise<number>;
}

// ── webhook delivery log and disabled URLs ───────────────────────────────────────────────────

export interface DeliveryQuery extends PageQuery {
  subject?: Subject | undefined;
  eventId?: string | undefined;
  status?: DeliveryStatus | undefined;
}

/** What `insertOnce` did: logged it, found no room, or found the delivery its event already has to that URL. */
export type InsertOnceOutcome = InsertOutcome | { ok: false; reason: 'exists'; existing: Delivery };

export interface DeliveryLogStore {
  /** Logs a new delivery; full when the bound is reached and every logged delivery is unfinished. */
  insert(delivery: Delivery): Promise<InsertOutcome>;
  /**
   * Logs a new delivery unless its event already has one to the same URL (`exists`: that one,
   * nothing logged). The work that makes a webhook may run again (a due job whose process died
   * before it was completed): its webhook stays one delivery, with one event id.
   * @see issue 14 "kill -9"
   */
  insertOnce(delivery: Delivery): Promise<InsertOnceOutcome>;
  get(id: string): Promise<Delivery | undefined>;
  /** Applies a change (and appends its attempt); undefined when the delivery is unknown. */
  update(id: string, change: DeliveryChange): Promise<Delivery | undefined>;
  /**
   * `update`, only while the delivery is as `expect` says (one of its statuses, that many
   * attempts), checked and applied in one step: of two callers that read it alike, one changes
   * it. `changed`: false when it was not as expected (the delivery as it is); undefined when unknown.
   */
  updateIf(id: string, expect: DeliveryExpectation, change: DeliveryChange): Promise<{ delivery: Delivery; changed: boolean } | undefined>;
  /**
   * `update` and, when it made the change, schedules `job`, in one operation: a store shared with
   * other processes' schedulers (Redis), so that no replica runs a delivery's retry job before the
   * delivery is marked retrying. Absent: the caller schedules the job first, then updates. With
   * `expect`, only while the delivery is so (as `updateIf`): undefined when it was not (nothing
   * changed, no job), as when it is unknown.
   */
  updateScheduled?: ((id: string, change: DeliveryChange, job: Job, expect?: DeliveryExpectation) => Promise<Delivery | undefined>) | undefined;
  /** The newest delivery of a subject that is not a test send. */
  latestFor(subject: Subject): Promise<Delivery | undefined>;
  list(query: DeliveryQuery): Promise<Page<Delivery>>;
  stats(): Promise<StoreStats>;
  /** Evicts finished deliveries older than the TTL; returns how many. */
  sweep(now: number): Promise<number>;
}

export interface DisabledUrlStore {
  /**
   * Disables `url` from `at` (a URL already disabled keeps its time); answers the URLs it re-enabled
   * to stay within its bound (WEBHOOK_MAX_DISABLED_URLS: those disabled first), none until then.
   */
  disable(url: string, at: number): Promise<string[]>;
  /** True when the URL was disabled. */
  enable(url: string): Promise<boolean>;
  isDisabled(url: string): Promise<boolean>;
  /** In the order they were disabled, the first first. */
  list(): Promise<Array<{ url: string; disabledAt: number }>>;
}

// ── webhook deliveries waiting to be attempted ───────────────────────────────────────────────

/**
 * Receives the deliveries a queue hands over for an attempt: the delivery as it is to be
 * attempted, its URL's origin, and the ticket `ack` takes once the attempt is over (null: the
 * queue keeps nothing to acknowledge).
 */
export type DeliveryHandler = (delivery: Delivery, origin: string, ticket: string | null) => void;

/**
 * What `DeliveryQueue.accept` did with a new delivery: logged and queued it; logged it failed
 * (`queue_full`: the queue refused it); logged nothing (`log_full`); or found the delivery its
 * event already has to that URL (`exists`, nothing logged or queued).
 */
/** What a conditional change expects of a delivery: one of these statuses, with this many attempts. */
export interface DeliveryExpectation {
  statuses: readonly DeliveryStatus[];
  attempts: number;
  /**
   * And that its stream entry is still held by one of these consumers of a shared queue (its
   * `heldAs`): an attempt's result is recorded only by the process whose entry it is, not by one
   * that stalled while another took the entry over and is attempting it.
   */
  heldAs?: HeldEntry | undefined;
}

/** A shared queue's entry as a consumer holds it (Redis: the stream, its group, the entry's id, the consumers that count as holding it). */
export interface HeldEntry {
  stream: string;
  group: string;
  entry: string;
  consumers: readonly string[];
}

/**
 * The outcome of `requeue`: `queued` (the delivery as changed), `moved` (it was no longer as read:
 * nothing changed nor queued; the delivery as it is), `gone` (no longer logged).
 */
export type RequeueOutcome = { kind: 'queued'; delivery: Delivery } | { kind: 'moved'; delivery: Delivery } | { kind: 'gone' };

export type AcceptOutcome = { kind: 'queued' } | { kind: 'queue_full'; delivery: Delivery } | { kind: 'log_full' } | { kind: 'exists'; delivery: Delivery };

/**
 * Deliveries waiting to be attempted, between the dispatcher that accepts them and the workers
 * that attempt them. In memory this is a hand-over within the process: a delivery goes to the
 * handler as it is queued (the dispatcher's own lanes bound it), and nothing is acknowledged. A
 * shared queue (Redis) holds deliveries any process of the group may take; what a process holds
 * is what it took and has not acknowledged, and a process that dies leaves its deliveries to be
 * taken over by the others.
 */
export interface DeliveryQueue {
  /** True when several processes share it: a delivery accepted here may be attempted by another process. */
  readonly shared: boolean;
  /** Hands queued deliveries to `handler` from now on (once). */
  start(handler: DeliveryHandler): void;
  /**
   * Queues a delivery the log holds as pending, for its next attempt. With `max` > 0 a shared
   * queue refuses it (false) when that many deliveries are already waiting to start (queued, or
   * taken and not begun; attempts in flight do not count); 0: no bound
   * (retries and replays always get in). The memory queue always takes it.
   */
  enqueue(delivery: Delivery, origin: string, max: number): Promise<boolean>;
  /**
   * Logs a new pending delivery in the delivery log, once per event and URL (as `insertOnce`),
   * and queues it, in one step: a process that dies in between cannot leave a delivery logged
   * that no queue holds, nor queued twice. `max` as for `enqueue`; a delivery the queue refuses
   * is logged as failed with `queue_full` (the delivery as logged).
   * @see issue 14 "kill -9"
   */
  accept(delivery: Delivery, origin: string, max: number): Promise<AcceptOutcome>;
  /**
   * Moves a logged delivery, as last read (`read`: its status and attempts), to pending by
   * `change` and queues it for its next attempt, in one step and without a bound: a retry when
   * due, a replay. A process that dies in between cannot leave it pending with no queue holding
   * it, two callers that read it alike do not both queue it (`moved` for the second), and a call
   * sent again after a lost reply answers what the first run did.
   * @see issue 14 "kill -9"
   */
  requeue(read: Delivery, change: DeliveryChange): Promise<RequeueOutcome>;
  /**
   * The attempt of the delivery handed over with `ticket` starts (a worker took it): from now on
   * it is in flight, so it no longer counts as waiting (`max` of `enqueue`), as in memory. False
   * when the entry is this process's no longer (another took it over while this one was stalled
   * past the claim idle time): it is then no longer held here. The dispatcher does not wait for the
   * answer (its attempt goes ahead; its result is recorded only as the log allows).
   */
  begin(ticket: string): Promise<boolean>;
  /** The entry of `ticket` as this consumer holds it, for a record conditional on still holding it; none for a queue of one process. */
  heldAs?(ticket: string): HeldEntry;
  /** The attempt of the delivery handed over with `ticket` is over and its result is in the log. */
  ack(ticket: string): Promise<void>;
  /** `ticket`'s entry is another consumer's now (it took it over): dropped here, neither acknowledged nor handed back. */
  forget(ticket: string): void;
  /**
   * `ticket`'s delivery will not be attempted here (the dispatcher closed first), or its attempt
   * ended without its result recorded: hand it back, for any process to take (after checking the log).
   */
  release(ticket: string): void;
  /** Stops handing over deliveries (those already handed over can still be acknowledged). */
  stop(): Promise<void>;
}

// ── payments of the Payment Server v3 API (/api/v2) ──────────────────────────────────────────

export type V2BeginOutcome =
  /** The tx_id was new: the payment is stored as given. */
  | { kind: 'created'; payment: V2Payment }
  /** The tx_id has a payment made by the same request: that payment, as it is now. */
  | { kind: 'existing'; payment: V2Payment }
  /** The tx_id has a payment made by another request (other order, user, amount or callback URL). */
  | { kind: 'conflict'; payment: V2Payment }
  /** The bound is reached and every stored payment is PENDING. */
  | { kind: 'full' };

export interface V2PaymentQuery {
  /** At most this many payments. */
  limit: number;
  status?: V2Status | undefined;
  /**
   * A page's `nextCursor`: the payments created before its last one. It is that payment's place in
   * creation order (a decimal sequence number, `V2_LIST_CURSOR`), not its id: ids (`pay_<tx_id>`)
   * say nothing about when a payment was made, and the place stays valid after that payment is evicted.
   */
  cursor?: string | undefined;
}

export interface V2PaymentPage extends Page<V2Payment> {
  /** Each listed payment's own cursor (its place in creation order): a list from it goes on after that payment. */
  cursors: string[];
}

export interface V2PaymentStore {
  /**
   * Stores the payment of a new tx_id, or says what its tx_id already has, in one step: of any
   * number of concurrent requests with one tx_id exactly one creates.
   */
  begin(payment: V2Payment): Promise<V2BeginOutcome>;
  /**
   * Optional: `begin` and, when it creates the payment, `job` (its decision) in one atomic step, for
   * a store on the scheduler's own back end (Redis), so no payment is ever stored without its
   * decision's job. Without it the service schedules the job in a second call.
   */
  beginScheduled?: ((payment: V2Payment, job: Job) => Promise<V2BeginOutcome>) | undefined;
  get(id: string): Promise<V2Payment | undefined>;
  /**
   * Applies the planned outcome of a PENDING payment not decided yet: a decline becomes
   * PAYMENT_FAILED; an approval stays PENDING with `decidedAt` (its callback is on its way).
   */
  decide(id: string, now: number): Promise<Transition<V2Payment>>;
  /**
   * PENDING → PAYMENT_COMPLETED. `callback`: only once decided and planned to complete, and
   * `confirmedAt` is the decision's time (what the callback said); `manual`: any PENDING payment,
   * `confirmedAt` = `now`.
   */
  complete(id: string, by: V2Completion, now: number): Promise<Transition<V2Payment>>;
  /** Newest first (creation order), at most `limit`, optionally of one status, after `cursor`; a cursor that is not a `V2_LIST_CURSOR` is a RangeError. */
  list(query: V2PaymentQuery): Promise<V2PaymentPage>;
  /** Payments held, by status. */
  counts(): Promise<Record<V2Status, number>>;
  stats(): Promise<StoreStats>;
  /** Evicts finished payments (completed or failed) older than the TTL; returns how many. */
  sweep(now: number): Promise<number>;
}

// ── scheduler of due work ────────────────────────────────────────────────────────────────────

/** A piece of due work: `kind` names the handler (`intent.decide`), `key` the thing (`pay_…`). */
export interface Job {
  kind: string;
  key: string;
  dueAt: number;
  /**
   * The W3C `traceparent` of the work that asked for the job (a request's), when tracing is on: a
   * shared store keeps it with the job, so whichever process runs the job runs it in that trace.
   */
  trace?: string | undefined;
}

/** A job claimed by one worker until its lease lapses; `token` identifies the claim. */
export interface ClaimedJob extends Job {
  token: string;
}

export interface SchedulerStore {
  /**
   * Adds a job, or moves the job of the same kind and key to `dueAt`. `earliest`: a job of that
   * kind and key already waiting to run by `dueAt` stays as it is (several callers each asking for
   * a look no later than their time: the last of them no longer undoes an earlier one's).
   */
  schedule(job: Job, options?: { earliest?: boolean }): Promise<void>;
  /** Removes a job; true when there was one. */
  cancel(kind: string, key: string): Promise<boolean>;
  /**
   * Claims up to `limit` jobs due at `now`, earliest first, for `leaseMs`: until then no other
   * claim returns them; a claim that is not completed in time is returned by a later claim.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedJob[]>;
  /** Removes claimed jobs (a batch at once), each unless it was rescheduled or claimed again since its claim. */
  complete(jobs: readonly ClaimedJob[]): Promise<void>;
  /**
   * Gives claimed jobs back, each due again at its `dueAt` (as claimed, or a retry's later time) and
   * free for the next claim at once, unless it was cancelled, rescheduled or claimed again since its
   * claim: then it stays as that left it. Sent twice, the second changes nothing.
   */
  release(jobs: readonly ClaimedJob[]): Promise<void>;
  /** When the earliest job (claimed ones at their lease's end) falls due; undefined when there is none. */
  nextDueAt(): Promise<number | undefined>;
  /** Jobs of a kind, claimed or not. */
  count(kind: string): Promise<number>;
  /** The keys of up to `limit` jobs of a kind, claimed or not, in no set order (for the shutdown's log). */
  keys(kind: string, limit: number): Promise<string[]>;
}

// ── console sessions ended by a log out ──────────────────────────────────────────────────────

/**
 * The web console's sessions that were logged out before their expiry: a session cookie is signed
 * and carries its expiry (src/console/auth.ts), so only an early end needs state, shared by every
 * replica. An id is kept until the session would have expired, then forgotten (`sweep`; a lookup
 * past it answers false). Bounded: past `max` ids, the one that expires first goes (with one
 * session lifetime, the one revoked first; its session would pass for live again until its expiry).
 */
export interface RevokedSessionStore {
  /** Marks the session `id` as ended until `until` (its expiry, epoch ms). Sent twice, the second changes nothing. */
  revoke(id: string, until: number): Promise<void>;
  /** Whether the session `id` was ended and would not have expired by `now`. */
  isRevoked(id: string, now: number): Promise<boolean>;
  /** Forgets ids whose `until` is at or before `now`; returns how many. */
  sweep(now: number): Promise<number>;
  stats(): Promise<StoreStats>;
}

/** Every port, as one back end provides them. */
export interface Stores {
  intents: IntentStore;
  idempotency: IdempotencyStore;
  bookings: BookingStore;
  seats: SeatStore;
  ledger: LedgerStore;
  deliveries: DeliveryLogStore;
  disabledUrls: DisabledUrlStore;
  scheduler: SchedulerStore;
  v2Payments: V2PaymentStore;
  /** FluxPay's orders, payments, credits, sagas, ledger and outbox (src/core/fluxpay/ports.ts). */
  fluxpay: FluxPayStore;
  fluxpaySubscriptions: FluxPaySubscriptionStore;
  /** Issue 12's billing subscriptions (`sub_`, src/core/subscriptions/ports.ts); their events go to the FluxPay outbox. */
  billing: SubscriptionStore;
  /** Issue 12's waiting rooms and their tickets (src/core/waiting-room/ports.ts). */
  waitingRooms: WaitingRoomStore;
  /** Issue 12's rate-limit windows (src/core/rate-limit/ports.ts). */
  rateLimits: RateLimitStore;
  /** Issue 15's fault rules and their hit counters (src/core/faults/ports.ts). */
  faultRules: FaultRuleStore;
  /** The web console's logged-out sessions (src/console/auth.ts). */
  revokedSessions: RevokedSessionStore;
  /** The web console's failed logins per client address, in one-minute windows: a rate-limit store of their own (CONSOLE_MAX_LOGIN_ADDRESSES). */
  consoleLogins: RateLimitStore;
}
