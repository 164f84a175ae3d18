/**
 * The virtual waiting room of FluxPay (source document 002, "트래픽 제어 (Virtual Waiting Room)"):
 * users enter a room and wait in a queue; the room admits them strictly first in, first out, at
 * `admitPerSecond`, each with an admission token valid for `admissionTtlSeconds`.
 *
 * Admission is computed, not polled: the rate is a token bucket of capacity one on the injected
 * clock, so the k-th admission happens at
 *
 *   a(k) = max(entered(k), a(k−1) + 1000 / admitPerSecond, the time a slot frees up)
 *
 * where a slot frees up (only with `maxActive`) when an admitted user's token is spent (used for an
 * order that was written) or expires.
 * Any operation on a room first brings it up to `now` with `admitDue`, which replays exactly the
 * admissions that were due since it last ran, each at its own time; so how often a room is looked
 * at changes nothing about who is admitted when, and every replica computes the same answer.
 * @see issue 12 "Virtual waiting room", ../../../../shared/seeds/002_38de3c186cddda84.txt
 */

export const TICKET_STATUSES = ['WAITING', 'ADMITTED', 'EXPIRED'] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

/** What a room is told: by the policy file or `PUT /api/v1/waiting-rooms/{roomId}`. */
export interface RoomSettings {
  /** Admissions per second; 0 pauses admission (the queue keeps its order). */
  admitPerSecond: number;
  /** How long an admission token stays valid, from its admission. */
  admissionTtlSeconds: number;
  /** FluxPay service ids whose `POST /api/v1/orders` needs an admission token while the room is active. */
  protectedServiceIds: string[];
  /** At most this many admitted users hold a token holding a slot (neither spent nor expired) at once; null: no limit (the rate alone). */
  maxActive: number | null;
  /** An inactive room admits nobody new and protects nothing; its queue keeps its order. */
  active: boolean;
}

export interface Room extends RoomSettings {
  roomId: string;
  createdAt: number;
  updatedAt: number;
  /** Tickets issued so far; the next ticket's sequence number is `entered + 1`. */
  entered: number;
  /** Tickets admitted so far (in sequence order: tickets 1 … admitted are admitted). */
  admitted: number;
  /** Admitted tokens that expired unused. */
  expired: number;
  /** Admitted tokens used for an order. */
  used: number;
  /**
   * Admitted tokens neither spent nor expired: the slots `maxActive` counts. A token used for an
   * order still being written holds its slot until the order is (`spendAdmission`) or it expires.
   */
  activeCount: number;
  /** When the last admission happened (epoch ms); null before the first. */
  lastAdmittedAt: number | null;
  /** The earliest time the rate allows the next admission; +∞ while admission is paused. */
  nextAdmissionAt: number;
}

export interface Ticket {
  /** `wrt_<ULID>` */
  ticket: string;
  roomId: string;
  userId: string;
  /** 1-based place in the room's entry order. */
  sequence: number;
  status: TicketStatus;
  enteredAt: number;
  admittedAt: number | null;
  /** Given out once admitted (`adm_<ULID>`), kept hidden before. */
  admissionToken: string;
  expiresAt: number | null;
  /** When the token was used for an order; such a ticket stays ADMITTED. */
  usedAt: number | null;
  /** The order the token was used for. */
  usedFor: string | null;
}

export function copyRoom(room: Room): Room {
  return { ...room, protectedServiceIds: [...room.protectedServiceIds] };
}

export function copyTicket(ticket: Ticket): Ticket {
  return { ...ticket };
}

/** The highest admission rate a room takes, per second. */
export const MAX_ADMIT_PER_SECOND = 100_000;
/**
 * The lowest admission rate above 0 a room takes: one admission every 1,000 s. A lower one (a
 * denormal such as 5e-324, say) puts the next admission past the last time a date can hold, or
 * makes its interval infinite.
 */
export const MIN_ADMIT_PER_SECOND = 0.001;

/** The rates a room takes, in words. */
export const ADMIT_PER_SECOND_RULE = `must be 0 (paused) or from ${MIN_ADMIT_PER_SECOND} (one admission every ${1 / MIN_ADMIT_PER_SECOND} s) to ${MAX_ADMIT_PER_SECOND}`;

/** Why a room cannot admit at `value` per second (ADMIT_PER_SECOND_RULE); undefined for 0 (paused) and from MIN_ADMIT_PER_SECOND to MAX_ADMIT_PER_SECOND. */
export function admitPerSecondProblem(value: number): string | undefined {
  return value === 0 || (value >= MIN_ADMIT_PER_SECOND && value <= MAX_ADMIT_PER_SECOND) ? undefined : ADMIT_PER_SECOND_RULE;
}

/** The interval between two admissions at `admitPerSecond` (+∞ when paused or inactive). */
export function admissionInterval(settings: Pick<RoomSettings, 'admitPerSecond' | 'active'>): number {
  return settings.active && settings.admitPerSecond > 0 ? 1000 / settings.admitPerSecond : Number.POSITIVE_INFINITY;
}

/** A new room: nothing entered, the first admission allowed at once. */
export function newRoom(roomId: string, settings: RoomSettings, now: number): Room {
  return {
    roomId,
    ...settings,
    protectedServiceIds: [...settings.protectedServiceIds],
    createdAt: now,
    updatedAt: now,
    entered: 0,
    admitted: 0,
    expired: 0,
    used: 0,
    activeCount: 0,
    lastAdmittedAt: null,
    nextAdmissionAt: admissionInterval(settings) === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY,
  };
}

/**
 * New settings for a room that `admitDue` has brought up to `now`: the queue keeps its order; the
 * next admission is spaced from the last one at the new rate, and never earlier than `now`.
 */
export function applySettings(room: Room, settings: RoomSettings, now: number): void {
  Object.assign(room, settings, { protectedServiceIds: [...settings.protectedServiceIds], updatedAt: now });
  const interval = admissionInterval(room);
  if (interval === Number.POSITIVE_INFINITY) room.nextAdmissionAt = Number.POSITIVE_INFINITY;
  else room.nextAdmissionAt = Math.max(now, room.lastAdmittedAt === null ? now : room.lastAdmittedAt + interval);
}

/**
 * The queue and the admitted tokens of one room, as a store keeps them; `admitDue` works through
 * this view so that every adapter runs the same rules.
 */
export interface RoomQueue {
  /** The WAITING ticket that entered first, or undefined when nobody waits. */
  head(): Ticket | undefined;
  /** Marks the head admitted (the caller has set its fields) and removes it from the queue. */
  admitHead(ticket: Ticket): void;
  /** The admitted token holding a slot (unused, or used for an order not written yet) that expires first. */
  firstToExpire(): Ticket | undefined;
  /** Marks an admitted ticket expired (the caller has set its status). */
  expire(ticket: Ticket): void;
  /** Takes a used ticket's token out of the slots (its order written, or its time over): it ended at its use. */
  spend(ticket: Ticket): void;
  /** True while the ticket's token holds a slot (admitted, neither spent nor expired). */
  holdsSlot(ticket: Ticket): boolean;
}

/**
 * Brings `room` up to `now`: expires tokens whose time has come and admits, in entry order, every
 * waiting ticket whose admission time has come, each at that time. Returns the tickets admitted.
 */
export function admitDue(room: Room, queue: RoomQueue, now: number): Ticket[] {
  const admitted: Ticket[] = [];
  const interval = admissionInterval(room);
  for (;;) {
    const head = queue.head();
    if (head === undefined || interval === Number.POSITIVE_INFINITY) break;
    let at = Math.max(head.enteredAt, room.nextAdmissionAt);
    if (at > now) break;
    expireUntil(room, queue, at);
    // A room at its limit of active tokens admits when the first of them expires (if by `now`);
    // a spent token has freed its slot already.
    let blocked = false;
    while (room.maxActive !== null && room.activeCount >= room.maxActive) {
      const first = queue.firstToExpire();
      if (first === undefined || (first.expiresAt as number) > now) {
        blocked = true;
        break;
      }
      at = Math.max(at, first.expiresAt as number);
      expireUntil(room, queue, at);
    }
    if (blocked) break;
    head.status = 'ADMITTED';
    head.admittedAt = at;
    head.expiresAt = at + room.admissionTtlSeconds * 1000;
    queue.admitHead(head);
    room.admitted += 1;
    room.activeCount += 1;
    room.lastAdmittedAt = at;
    room.nextAdmissionAt = at + interval;
    admitted.push(head);
  }
  expireUntil(room, queue, now);
  return admitted;
}

/**
 * When the next admission of a room brought up to `now` falls due if nothing else happens: the
 * rate's next slot, or for a room holding `maxActive` tokens the first expiry (a token spent
 * sooner frees its slot sooner). Null when nobody waits or admission is paused. A caller that
 * wants admissions published as they happen looks again then, not before.
 */
export function nextAdmissionDue(room: Room, queue: RoomQueue, now: number): number | null {
  const head = queue.head();
  if (head === undefined || admissionInterval(room) === Number.POSITIVE_INFINITY) return null;
  const at = Math.max(now, head.enteredAt, room.nextAdmissionAt);
  if (room.maxActive === null || room.activeCount < room.maxActive) return at;
  // At the cap with no token to expire (counts out of step, an earlier version's): only a spend, a
  // settings change or an entry looks again (before 2026-12-06 `at`: ticks back to back).
  const first = queue.firstToExpire();
  return first === undefined ? null : Math.max(at, first.expiresAt as number);
}

/** Expires every active token whose expiry is at or before `at`. */
function expireUntil(room: Room, queue: RoomQueue, at: number): void {
  for (;;) {
    const first = queue.firstToExpire();
    if (first === undefined || (first.expiresAt as number) > at) return;
    expireTicket(room, queue, first);
  }
}

function expireTicket(room: Room, queue: RoomQueue, ticket: Ticket): void {
  room.activeCount -= 1;
  // Used for an order never said written (its process stopped, or the store went away): its slot
  // frees at its time, and it stays used (ADMITTED).
  if (ticket.usedAt !== null) return queue.spend(ticket);
  ticket.status = 'EXPIRED';
  queue.expire(ticket);
  room.expired += 1;
}

/**
 * Uses an admitted ticket's token for `orderId` at `now` (the room brought up to `now` first), so
 * no other order can have it. It holds its slot until its order is written (`spendAdmission`): a
 * room at `maxActive` admits nobody into it while the order may still fail and the token come back
 * (before 2026-12-06 the slot was free from the use, and a token given back left the room one over its cap).
 */
export function useAdmission(room: Room, ticket: Ticket, orderId: string, now: number): void {
  ticket.usedAt = now;
  ticket.usedFor = orderId;
  room.used += 1;
}

/**
 * The order a used token was for is written: the token's slot is free from `now`, so a room held
 * at `maxActive` admits its next user no earlier than that. The caller checks `queue.holdsSlot`.
 */
export function spendAdmission(room: Room, queue: RoomQueue, ticket: Ticket, now: number): void {
  queue.spend(ticket);
  room.activeCount -= 1;
  room.nextAdmissionAt = Math.max(room.nextAdmissionAt, now);
}

/**
 * Undoes `useAdmission` when the order the token was used for was not created: the token is the
 * ticket's again, valid until its own expiry (a store then expires it if that has passed). `spent`:
 * its slot was freed meanwhile (spent by a process that then lost the order, or its time over while
 * used): it takes a slot again, and the caller puts it back among the active tokens.
 */
export function releaseAdmission(room: Room, ticket: Ticket, spent: boolean): void {
  ticket.usedAt = null;
  ticket.usedFor = null;
  room.used -= 1;
  if (spent) room.activeCount += 1;
}

/** A ticket's status at `now` for a room brought up to `now`: an admitted token past its expiry reads EXPIRED. */
export function ticketStatusAt(ticket: Ticket, now: number): TicketStatus {
  if (ticket.status === 'ADMITTED' && ticket.usedAt === null && (ticket.expiresAt as number) <= now) return 'EXPIRED';
  return ticket.status;
}

/** 1-based place among those still waiting (0 once admitted). */
export function positionOf(room: Room, ticket: Ticket): number {
  return ticket.status === 'WAITING' ? ticket.sequence - room.admitted : 0;
}

/**
 * Seconds until a waiting ticket at `position` is admitted, rounded up; null while admission is
 * paused or the room is inactive. At the current rate, and with `maxActive` the later of that and
 * of its slots: past the slots free now, a ticket waits for live tokens to expire, counted as if
 * none were used (every live token expires by the last admission's time plus
 * `admissionTtlSeconds`, and each slot then admits one user per `admissionTtlSeconds`), so a used
 * token admits sooner. Before 2026-12-04 it ignored `maxActive`: a room held at it read 0 s for minutes.
 */
export function estimatedWaitSeconds(room: Room, position: number, now: number): number | null {
  if (position === 0) return 0;
  const interval = admissionInterval(room);
  if (interval === Number.POSITIVE_INFINITY) return null;
  const first = Math.max(0, room.nextAdmissionAt - now);
  let wait = first + (position - 1) * interval;
  // Past the slots free now, the ticket waits for slots to free up (`maxActive` of them per TTL).
  const beyondFree = room.maxActive === null ? 0 : position - (room.maxActive - room.activeCount);
  if (room.maxActive !== null && room.lastAdmittedAt !== null && beyondFree > 0) {
    const ttl = room.admissionTtlSeconds * 1000;
    wait = Math.max(wait, room.lastAdmittedAt + ttl - now + (Math.ceil(beyondFree / room.maxActive) - 1) * ttl);
  }
  return Math.ceil(wait / 1000);
}
