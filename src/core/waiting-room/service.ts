import type { Clock } from '../clock.ts';
import { storeFull } from '../errors.ts';
import { FluxPayError } from '../fluxpay/errors.ts';
import type { IdFactory } from '../ids.ts';
import type { Scheduler } from '../scheduler.ts';
import { scaled } from '../time-scale.ts';
import type { UseTokenOutcome, WaitingRoomStore } from './ports.ts';
import { admitPerSecondProblem, estimatedWaitSeconds, positionOf, ticketStatusAt, type Room, type RoomSettings, type Ticket, type TicketStatus } from './room.ts';

/**
 * Virtual waiting rooms (issue 12): rooms created or changed while running, users entering and
 * polling their tickets, and the guard on orders of protected services. The store decides who is
 * admitted when (room.ts); this service reads it, publishes each admission once (the store hands
 * every admission to exactly one caller), and keeps a `waiting_room.tick` job due at each room's
 * next admission, so admissions are published (and counted) as they happen even when nobody asks.
 * A new entry and a put (room created or changed) are published too, so watchers (the console)
 * see a queue grow and a rate change as they happen.
 * @see issue 12 "Virtual waiting room"
 */

export const WAITING_ROOM_TICK_JOB = 'waiting_room.tick';

/** A user admitted: when they entered and when they were admitted (the wait is the difference). */
export interface WaitingRoomAdmittedEvent {
  id: string;
  type: 'waiting_room.admitted';
  occurredAt: number;
  roomId: string;
  ticket: string;
  enteredAt: number;
  admittedAt: number;
}

/** A room changed without an admission: a user entered it (a new ticket), or it was created or changed (PUT). */
export interface WaitingRoomChangedEvent {
  id: string;
  type: 'waiting_room.entered' | 'waiting_room.changed';
  occurredAt: number;
  roomId: string;
}

export type WaitingRoomEvent = WaitingRoomAdmittedEvent | WaitingRoomChangedEvent;

export interface WaitingRoomServiceDeps {
  store: WaitingRoomStore;
  scheduler: Scheduler;
  clock: Clock;
  ids: IdFactory;
  publish: (event: WaitingRoomEvent) => void;
  /** The billing policy's services: a room protects only those (a PUT naming another is refused). */
  services: { has(serviceId: string): boolean; keys(): Iterable<string> };
  /**
   * TIME_SCALE (issue 15); unset: 1. A room runs at `admitPerSecond` / scale with tokens valid
   * `admissionTtlSeconds` × scale: the store holds those effective figures, so every adapter's
   * admission rules stay as they are; views give the settings back as they were put.
   */
  timeScale?: number | undefined;
  /**
   * The rooms the billing policy declares (made at start): one the store turns out not to hold
   * (a Redis that lost its data: FLUSHALL, a restart without persistence; no route deletes a room)
   * is made again from the policy by the call that finds it missing, and `onRestored` is told.
   */
  declared?: ReadonlyMap<string, RoomSettings>;
  /** A declared room found missing was made again (`created`), or could not be (`full`: FLUXPAY_MAX_WAITING_ROOMS rooms made since). */
  onRestored?: (roomId: string, outcome: 'created' | 'full') => void;
}

/** A declared room is made again at most this often (real time) by the calls that found it missing; their burst shares one try. */
const RESTORE_LOOK_EVERY_MS = 1000;

/** A ticket as its holder sees it at one moment. */
export interface TicketView {
  ticket: string;
  roomId: string;
  userId: string;
  status: TicketStatus;
  /** 1-based among those waiting; 0 once admitted. */
  position: number;
  estimatedWaitSeconds: number | null;
  enteredAt: number;
  admittedAt: number | null;
  /** Only once admitted (and while it is ADMITTED or EXPIRED). */
  admissionToken: string | null;
  expiresAt: number | null;
  usedAt: number | null;
  usedFor: string | null;
}

/** A room at one moment: its settings and its counts. */
export interface RoomView extends RoomSettings {
  roomId: string;
  /** Users waiting now. */
  size: number;
  entered: number;
  admitted: number;
  /** Admitted tokens holding a slot: neither expired nor spent (used for an order that was written). */
  activeTokens: number;
  used: number;
  expired: number;
  /** Admissions per second now: 0 while paused or inactive. */
  currentRate: number;
  nextAdmissionAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export type EnterResult = { kind: 'entered' | 'existing'; ticket: TicketView };

/** Why an order of a protected service is refused (WAIT_001). */
export type GuardRefusal = Exclude<UseTokenOutcome, { kind: 'unprotected' | 'used' }>;

/** What `guardOrder` did: refused the order, or created it (`create`'s value). */
export type GuardedOrder<T> = { kind: 'refused'; refusal: GuardRefusal } | { kind: 'created'; value: T };

export class WaitingRoomService {
  readonly #deps: WaitingRoomServiceDeps;
  readonly #scale: number;
  /** Per service, the declared rooms whose policy protects it. */
  readonly #declaredFor = new Map<string, string[]>();
  /** Per declared room, the last restore (`#restoreDeclared`) and when it began (real time). */
  readonly #restores = new Map<string, { at: number; done: Promise<boolean> }>();

  constructor(deps: WaitingRoomServiceDeps) {
    this.#deps = deps;
    this.#scale = deps.timeScale ?? 1;
    for (const [roomId, settings] of deps.declared ?? []) {
      for (const serviceId of settings.protectedServiceIds) this.#declaredFor.set(serviceId, [...(this.#declaredFor.get(serviceId) ?? []), roomId]);
    }
    deps.scheduler.register(WAITING_ROOM_TICK_JOB, async (roomId) => {
      const result = await deps.store.getRoom(roomId, deps.clock.now());
      if (result !== undefined) await this.#settle(roomId, result);
    });
  }

  /**
   * Creates a room or changes a running one: `created` or `updated`. COMMON_400 when
   * `admitPerSecond` is above 0 and below MIN_ADMIT_PER_SECOND (or out of range), or
   * `protectedServiceIds` names a service the billing policy does not know, WAIT_002 when creating
   * one room more than FLUXPAY_MAX_WAITING_ROOMS; nothing changes then.
   */
  async put(roomId: string, settings: RoomSettings): Promise<{ kind: 'created' | 'updated'; room: RoomView }> {
    const { store, clock, services } = this.#deps;
    const rate = admitPerSecondProblem(settings.admitPerSecond);
    if (rate !== undefined) throw new FluxPayError('COMMON_400', `admitPerSecond: ${rate}.`, [{ field: 'admitPerSecond', reason: rate }]);
    const unknown = settings.protectedServiceIds.flatMap((id, i) => (services.has(id) ? [] : [{ field: `protectedServiceIds.${i}`, id }]));
    if (unknown.length > 0) {
      const known = [...services.keys()].join(', ');
      const reason = (id: string) => `"${id}" is not a service of the billing policy (its services: ${known})`;
      throw new FluxPayError(
        'COMMON_400',
        `protectedServiceIds: ${unknown.map((u) => reason(u.id)).join('; ')}.`,
        unknown.map((u) => ({ field: u.field, reason: reason(u.id) })),
      );
    }
    const now = clock.now();
    const result = await store.putRoom(roomId, effective(settings, this.#scale), now);
    if (result.kind === 'full') throw new FluxPayError('WAIT_002', `Waiting room ${roomId} was not created: there are ${result.maxRooms} rooms already, the most FLUXPAY_MAX_WAITING_ROOMS allows; change an existing room instead.`);
    await this.#settle(roomId, result);
    this.#publishChanged('waiting_room.changed', roomId, now);
    return { kind: result.kind, room: roomView(result.room, now, this.#scale) };
  }

  /**
   * A room the billing policy declares, at a start: created, or changed to the policy's settings
   * only when the policy changed since the room was last made or changed from it (`kept` else), so
   * a restart, a scale-up or a second replica keeps what a PUT changed. WAIT_002 as for `put`.
   */
  async declare(roomId: string, settings: RoomSettings): Promise<'created' | 'updated' | 'kept'> {
    const now = this.#deps.clock.now();
    const running = effective(settings, this.#scale);
    const result = await this.#deps.store.declareRoom(roomId, running, declarationOf(running), now);
    if (result.kind === 'full') throw new FluxPayError('WAIT_002', `Waiting room ${roomId} of the billing policy was not created: there are ${result.maxRooms} rooms already, the most FLUXPAY_MAX_WAITING_ROOMS allows.`);
    if (result.kind === 'kept') return 'kept';
    await this.#settle(roomId, result);
    this.#publishChanged('waiting_room.changed', roomId, now);
    return result.kind;
  }

  async get(roomId: string): Promise<RoomView | undefined> {
    const now = this.#deps.clock.now();
    let result = await this.#deps.store.getRoom(roomId, now);
    if (result === undefined && (await this.#restoreDeclared([roomId]))) result = await this.#deps.store.getRoom(roomId, now);
    if (result === undefined) return undefined;
    await this.#settle(roomId, result);
    return roomView(result.room, now, this.#scale);
  }

  async list(): Promise<RoomView[]> {
    const now = this.#deps.clock.now();
    let { rooms, admitted } = await this.#deps.store.listRooms(now);
    this.#publishAdmitted(admitted, now);
    const listed = new Set(rooms.map((room) => room.roomId));
    if (await this.#restoreDeclared([...(this.#deps.declared?.keys() ?? [])].filter((roomId) => !listed.has(roomId)))) {
      ({ rooms, admitted } = await this.#deps.store.listRooms(now));
      this.#publishAdmitted(admitted, now);
    }
    return rooms.map((room) => roomView(room, now, this.#scale));
  }

  /** `undefined` when the room does not exist; STORE_FULL when no ticket can be added. */
  async enter(roomId: string, userId: string): Promise<EnterResult | undefined> {
    const { store, clock, ids } = this.#deps;
    const now = clock.now();
    const issued = { ticket: ids('wrt'), admissionToken: ids('adm') };
    let outcome = await store.enter(roomId, userId, issued, now);
    if (outcome.kind === 'no_room' && (await this.#restoreDeclared([roomId]))) outcome = await store.enter(roomId, userId, issued, now);
    if (outcome.kind === 'no_room') return undefined;
    // A refused entry may still have admitted the tickets that fell due: they are published as any others.
    await this.#settle(roomId, outcome);
    if (outcome.kind === 'full') throw storeFull('waiting_room_tickets');
    if (outcome.kind === 'entered') this.#publishChanged('waiting_room.entered', roomId, now);
    return { kind: outcome.kind, ticket: ticketView(outcome.room, outcome.ticket, now) };
  }

  async ticket(roomId: string, ticket: string): Promise<TicketView | undefined> {
    const now = this.#deps.clock.now();
    const result = await this.#deps.store.getTicket(roomId, ticket, now);
    if (result === undefined) return undefined;
    await this.#settle(roomId, result);
    return ticketView(result.room, result.ticket, now);
  }

  /**
   * The order guard around `create`, which creates order `orderId` of `serviceId`. When an active
   * room protects the service, `token` must be an admitted, unexpired, unused token of such a room
   * (else `refused`, why: `missing`, `invalid`, `expired`, `already_used`, `pending` while the
   * order it was used for is not written yet, nor known gone); it is used for
   * `orderId` before `create` runs, so two orders at once cannot both have it. If `create` then
   * throws (the order was not created: `exists` says so when given), the token is given back,
   * usable again until its own expiry, and the error goes on: a token is spent only on an order
   * that exists, and keeps its slot of `maxActive` until then (`spendToken`). A token used
   * for an order that `exists` says is not there a lease after its use (its giving back failed
   * too, the store away, or its process stopped in between) is given back when it is sent again.
   */
  guardOrder<T>(serviceId: string, token: string | undefined, orderId: string, create: () => Promise<T>, exists?: (orderId: string) => Promise<boolean>): Promise<GuardedOrder<T>> {
    return this.#guard(serviceId, token, orderId, create, exists, false);
  }

  /** `guardOrder`; `givenBack`: its token was just given back (its order gone), so it is not questioned again. */
  async #guard<T>(serviceId: string, token: string | undefined, orderId: string, create: () => Promise<T>, exists: ((orderId: string) => Promise<boolean>) | undefined, givenBack: boolean): Promise<GuardedOrder<T>> {
    const { store, clock, scheduler } = this.#deps;
    const now = clock.now();
    let outcome = await store.useToken(serviceId, token, orderId, now);
    // A room the policy declares to protect this service, lost by the store: made again, and asked again.
    if (outcome.kind === 'unprotected' && (await this.#restoreDeclared(this.#declaredFor.get(serviceId) ?? []))) outcome = await store.useToken(serviceId, token, orderId, now);
    if (outcome.kind === 'unprotected') return { kind: 'created', value: await create() };
    if (outcome.kind !== 'used') this.#publishAdmitted(outcome.admitted, now);
    if (outcome.kind === 'already_used' && exists !== undefined && !givenBack) {
      const { usedFor, usedAt, admissionToken } = outcome.ticket;
      const leaseOver = usedAt !== null && now >= usedAt + scheduler.leaseMs;
      const expired = outcome.ticket.expiresAt !== null && now >= outcome.ticket.expiresAt;
      // Asked while its order may still be being written (pending), a lease on (its request gone), or past its time.
      if (usedFor !== null && (outcome.pending || leaseOver || expired)) {
        const written = await exists(usedFor);
        if (!written && leaseOver) {
          const released = await store.releaseToken(admissionToken, usedFor, now);
          this.#publishAdmitted(released.admitted, now);
          // Once: given back, the token is unused (or used since, by an order too recent to question).
          return this.#guard(serviceId, token, orderId, create, exists, true);
        }
        if (written) {
          // Its order is written: spent, if the request that wrote it stopped before saying so.
          await this.orderWritten(admissionToken, usedFor);
          outcome = { ...outcome, pending: false };
        } else if (expired) {
          // Its time over, its order not there (its request stopped, or still failing): expired, not
          // "used for" an order that does not exist (a review); given back, it would be expired too.
          return { kind: 'refused', refusal: { kind: 'expired', ticket: outcome.ticket, roomIds: outcome.roomIds, admitted: outcome.admitted } };
        }
      }
    }
    if (outcome.kind !== 'used') return { kind: 'refused', refusal: outcome };
    let value: T;
    try {
      await this.#settle(outcome.ticket.roomId, outcome);
      value = await create();
    } catch (error) {
      // The order may be written all the same (the store failed after its write: a retry under its
      // key is answered it): spent then, not given back (a review: one token, two orders). Not known
      // (the store away): left used, given back when sent again a lease later if its order is not there.
      const written = exists === undefined ? false : await exists(orderId).catch(() => undefined);
      if (written === true) await this.orderWritten(outcome.ticket.admissionToken, orderId);
      else if (written === false) {
        const released = await store.releaseToken(outcome.ticket.admissionToken, orderId, clock.now());
        this.#publishAdmitted(released.admitted, clock.now());
      }
      throw error;
    }
    await this.orderWritten(outcome.ticket.admissionToken, orderId);
    return { kind: 'created', value };
  }

  /**
   * Order `orderId`, for which `token` was used, is written: the token's slot of `maxActive` is free,
   * and a room held at its cap may admit sooner than its tick. Nothing when the token is not in use
   * for that order, or its slot is free already. Never throws: not spent (the store away now), the
   * slot frees at the token's expiry. Also for a keyed retry answered the order its first request
   * wrote, and that request stopped before saying so.
   */
  async orderWritten(token: string, orderId: string): Promise<void> {
    try {
      const spent = await this.#deps.store.spendToken(token, orderId, this.#deps.clock.now());
      if (spent.roomId !== null) await this.#settle(spent.roomId, spent);
    } catch {
      // The order stands; the room's next look (a tick, an entry, a read) admits by then.
    }
  }

  /**
   * Makes again, from the policy, each declared room of `roomIds` that the store does not hold
   * (create only: a room another replica or a PUT made meanwhile is left as it is); true when one
   * of them exists now, so the caller asks the store again. One restore per room at a time, its
   * outcome shared by the calls of the next RESTORE_LOOK_EVERY_MS: the calls of a burst that found
   * the room missing all wait for it and ask again, none goes on unguarded. A store that fails it
   * fails the caller (an order is refused rather than made unguarded). A policy room a PUT no longer
   * has protect a service costs that service's orders one more read.
   */
  async #restoreDeclared(roomIds: readonly string[]): Promise<boolean> {
    let exists = false;
    for (const roomId of roomIds) {
      const settings = this.#deps.declared?.get(roomId);
      if (settings === undefined) continue;
      let restore = this.#restores.get(roomId);
      if (restore === undefined || Date.now() - restore.at >= RESTORE_LOOK_EVERY_MS) {
        const made = { at: Date.now(), done: this.#restoreOne(roomId, settings) };
        this.#restores.set(roomId, made);
        // A failed try (the store away) is not shared on: the next call tries again.
        made.done.catch(() => {
          if (this.#restores.get(roomId) === made) this.#restores.delete(roomId);
        });
        restore = made;
      }
      if (await restore.done) exists = true;
    }
    return exists;
  }

  /** Creates the declared room `roomId` where it is missing; true when it exists now. */
  async #restoreOne(roomId: string, settings: RoomSettings): Promise<boolean> {
    const { store, clock } = this.#deps;
    const now = clock.now();
    const running = effective(settings, this.#scale);
    const made = await store.createRoom(roomId, running, now, declarationOf(running));
    if (made.kind === 'exists') return true;
    this.#deps.onRestored?.(roomId, made.kind);
    if (made.kind === 'full') return false;
    await this.#settle(roomId, made);
    this.#publishChanged('waiting_room.changed', roomId, now);
    return true;
  }

  /**
   * Publishes what a call admitted and keeps the room's tick due at its next admission: when the
   * rate allows it, or for a room holding maxActive tokens when the first expires (not at once:
   * a tick that admits nobody would otherwise come straight back).
   */
  async #settle(roomId: string, result: { admitted: Ticket[]; nextDueAt: number | null }): Promise<void> {
    const now = this.#deps.clock.now();
    this.#publishAdmitted(result.admitted, now);
    // Earliest wins: calls that settle at once (a read, a use, a spend) each ask for a look no later
    // than what they saw, and the last to write no longer moves back a sooner look another asked for
    // (a user test on Redis: an admission published at the first token's expiry, not at the spend).
    // A tick too early finds nothing due and asks again; the tick's own job, claimed, is not kept.
    if (result.nextDueAt !== null) await this.#deps.scheduler.schedule(WAITING_ROOM_TICK_JOB, roomId, Math.max(now, result.nextDueAt), { earliest: true });
  }

  #publishChanged(type: WaitingRoomChangedEvent['type'], roomId: string, now: number): void {
    this.#deps.publish({ id: this.#deps.ids('evt'), type, occurredAt: now, roomId });
  }

  #publishAdmitted(admitted: Ticket[], now: number): void {
    const { publish, ids } = this.#deps;
    for (const ticket of admitted) {
      publish({ id: ids('evt'), type: 'waiting_room.admitted', occurredAt: now, roomId: ticket.roomId, ticket: ticket.ticket, enteredAt: ticket.enteredAt, admittedAt: ticket.admittedAt as number });
    }
  }
}

/** The settings a room runs with at TIME_SCALE `scale`: the rate divided by it, the token lifetime multiplied. */
function effective(settings: RoomSettings, scale: number): RoomSettings {
  if (scale === 1) return settings;
  return { ...settings, admitPerSecond: settings.admitPerSecond / scale, admissionTtlSeconds: scaled(settings.admissionTtlSeconds * 1000, scale) / 1000 };
}

/** The fingerprint of a declared room's settings as it runs them: the next start compares it (WaitingRoomStore.declareRoom). */
function declarationOf(settings: RoomSettings): string {
  const { admitPerSecond, admissionTtlSeconds, protectedServiceIds, maxActive, active } = settings;
  return JSON.stringify([admitPerSecond, admissionTtlSeconds, protectedServiceIds, maxActive, active]);
}

/** A figure scaled and scaled back, without the last bits of binary rounding (50 / 0.01 × 0.01 reads 50). */
function unscaled(value: number, factor: number): number {
  return factor === 1 ? value : Number((value * factor).toPrecision(12));
}

/** `currentRate`, `nextAdmissionAt` and the tickets' times are those in effect; `admitPerSecond` and `admissionTtlSeconds` read as put. */
export function roomView(room: Room, now: number, scale = 1): RoomView {
  const rate = room.active ? room.admitPerSecond : 0;
  const waiting = room.entered - room.admitted;
  return {
    roomId: room.roomId,
    admitPerSecond: unscaled(room.admitPerSecond, scale),
    admissionTtlSeconds: unscaled(room.admissionTtlSeconds, 1 / scale),
    protectedServiceIds: [...room.protectedServiceIds],
    maxActive: room.maxActive,
    active: room.active,
    size: waiting,
    entered: room.entered,
    admitted: room.admitted,
    activeTokens: room.activeCount,
    used: room.used,
    expired: room.expired,
    currentRate: rate,
    nextAdmissionAt: waiting > 0 && rate > 0 ? Math.max(now, room.nextAdmissionAt) : null,
    createdAt: room.createdAt,
    updatedAt: room.updatedAt,
  };
}

export function ticketView(room: Room, ticket: Ticket, now: number): TicketView {
  const status = ticketStatusAt(ticket, now);
  const position = positionOf(room, ticket);
  return {
    ticket: ticket.ticket,
    roomId: ticket.roomId,
    userId: ticket.userId,
    status,
    position,
    estimatedWaitSeconds: status === 'WAITING' ? estimatedWaitSeconds(room, position, now) : 0,
    enteredAt: ticket.enteredAt,
    admittedAt: ticket.admittedAt,
    admissionToken: status === 'WAITING' ? null : ticket.admissionToken,
    expiresAt: ticket.expiresAt,
    usedAt: ticket.usedAt,
    usedFor: ticket.usedFor,
  };
}
