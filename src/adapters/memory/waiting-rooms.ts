import { Heap } from 'heap-js';
import { FifoQueue } from '../../core/fifo-queue.ts';
import type { StoreStats } from '../../core/ports.ts';
import type { EnterOutcome, RoomResult, SpendOutcome, UseTokenOutcome, WaitingRoomStore } from '../../core/waiting-room/ports.ts';
import { admitDue, applySettings, nextAdmissionDue, releaseAdmission, spendAdmission, useAdmission, copyRoom, copyTicket, newRoom, ticketStatusAt, type Room, type RoomQueue, type RoomSettings, type Ticket } from '../../core/waiting-room/room.ts';
import { EvictionQueue } from './eviction-queue.ts';

export interface MemoryWaitingRoomStoreOptions {
  /** Rooms held at once; a room is never evicted, so creating one more is refused. */
  maxRooms: number;
  /** Tickets held across every room; beyond it the oldest ended ones go first, and a store of live ones refuses. */
  maxTickets: number;
  /** Ended tickets are kept this long after they ended (expired; used: when their token would have expired). */
  ttlMs: number;
}

/** One room's queue (waiting tickets, entry order) and its active tokens (a min-heap by expiry). */
class MemoryRoomQueue implements RoomQueue {
  readonly waiting = new FifoQueue<Ticket>();
  /**
   * Admitted tickets whose token holds a slot (neither spent nor expired), by expiry; a spent one
   * stays until it surfaces, then is skipped (not in #inActive), as is a second entry of a ticket
   * put back after it was spent (`reactivate`).
   */
  readonly #active = new Heap<Ticket>((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || a.sequence - b.sequence);
  /** The tickets whose token holds a slot: those of #active that count. */
  readonly #inActive = new Set<Ticket>();
  readonly #ended: (ticket: Ticket) => void;

  constructor(ended: (ticket: Ticket) => void) {
    this.#ended = ended;
  }

  head(): Ticket | undefined {
    return this.waiting.peek();
  }

  admitHead(ticket: Ticket): void {
    this.waiting.shift();
    this.#push(ticket);
  }

  /** An admitted ticket whose spent token was given back: holding a slot again until its expiry. */
  reactivate(ticket: Ticket): void {
    if (!this.#inActive.has(ticket)) this.#push(ticket);
  }

  firstToExpire(): Ticket | undefined {
    for (;;) {
      const first = this.#active.peek();
      if (first === undefined || this.#inActive.has(first)) return first;
      this.#active.pop();
    }
  }

  expire(ticket: Ticket): void {
    if (this.#active.peek() === ticket) this.#active.pop();
    else this.#active.remove(ticket);
    this.#inActive.delete(ticket);
    this.#ended(ticket);
  }

  spend(ticket: Ticket): void {
    this.#inActive.delete(ticket);
  }

  holdsSlot(ticket: Ticket): boolean {
    return this.#inActive.has(ticket);
  }

  #push(ticket: Ticket): void {
    this.#active.push(ticket);
    this.#inActive.add(ticket);
  }
}

interface RoomEntry {
  room: Room;
  queue: MemoryRoomQueue;
  /** The fingerprint of the billing policy's declaration it was last made or changed from (`declareRoom`). */
  declared?: string;
}

/**
 * Waiting rooms in one process's memory. Each call is synchronous inside, so it is one atomic step.
 * Tickets of a user are found by room and user id, tokens by their value. Ended tickets leave after
 * the TTL (or first when the store is full), in the order they ended; waiting and admitted ones are
 * never evicted. A used ticket counts as ended only when its token would have expired: until then
 * the order guard may give its token back (the order was not created), so it must still be here.
 */
export class MemoryWaitingRoomStore implements WaitingRoomStore {
  readonly #rooms = new Map<string, RoomEntry>();
  readonly #tickets = new Map<string, Ticket>();
  /** `<roomId>\n<userId>` → the user's latest ticket in that room. */
  readonly #byUser = new Map<string, string>();
  /** Admission token → ticket id (every ticket's, admitted or not; only admitted ones are usable). */
  readonly #byToken = new Map<string, string>();
  /** When each ended ticket ended, for the TTL. */
  readonly #endedAt = new Map<string, number>();
  // A ticket whose token was given back (releaseToken) has no end any more: its id is skipped.
  readonly #evictable = new EvictionQueue(
    (id: string) => (this.#endedAt.has(id) ? this.#tickets.get(id) : undefined),
    (ticket: Ticket) => this.#endedAt.get(ticket.ticket) as number,
    (ticket: Ticket) => this.#remove(ticket),
  );
  /** Used tickets until their token's expiry, soonest first: then they join the evictable ones (#endUsed). */
  readonly #used = new Heap<Ticket>((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || a.sequence - b.sequence);
  readonly #options: MemoryWaitingRoomStoreOptions;

  constructor(options: MemoryWaitingRoomStoreOptions) {
    this.#options = options;
  }

  putRoom(roomId: string, settings: RoomSettings, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'full'; maxRooms: number }> {
    return Promise.resolve(this.#put(roomId, settings, now));
  }

  createRoom(roomId: string, settings: RoomSettings, now: number, declared?: string): Promise<(RoomResult & { kind: 'created' }) | { kind: 'exists' } | { kind: 'full'; maxRooms: number }> {
    if (this.#rooms.has(roomId)) return Promise.resolve({ kind: 'exists' });
    return Promise.resolve(this.#put(roomId, settings, now, declared) as (RoomResult & { kind: 'created' }) | { kind: 'full'; maxRooms: number });
  }

  declareRoom(roomId: string, settings: RoomSettings, fingerprint: string, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'kept' } | { kind: 'full'; maxRooms: number }> {
    if (this.#rooms.get(roomId)?.declared === fingerprint) return Promise.resolve({ kind: 'kept' });
    return Promise.resolve(this.#put(roomId, settings, now, fingerprint));
  }

  /** Creates or changes the room; `declared`, when given, becomes its declaration's fingerprint. */
  #put(roomId: string, settings: RoomSettings, now: number, declared?: string): (RoomResult & { kind: 'created' | 'updated' }) | { kind: 'full'; maxRooms: number } {
    const entry = this.#rooms.get(roomId);
    if (entry === undefined) {
      if (this.#rooms.size >= this.#options.maxRooms) return { kind: 'full', maxRooms: this.#options.maxRooms };
      const created: RoomEntry = { room: newRoom(roomId, settings, now), queue: this.#newQueue(), declared };
      this.#rooms.set(roomId, created);
      return { kind: 'created', ...this.#result(created, [], now) };
    }
    if (declared !== undefined) entry.declared = declared;
    const admitted = admitDue(entry.room, entry.queue, now);
    applySettings(entry.room, settings, now);
    // New settings may admit at once (a higher rate, a room made active).
    admitted.push(...admitDue(entry.room, entry.queue, now));
    return { kind: 'updated', ...this.#result(entry, admitted, now) };
  }

  getRoom(roomId: string, now: number): Promise<RoomResult | undefined> {
    const entry = this.#rooms.get(roomId);
    if (entry === undefined) return Promise.resolve(undefined);
    return Promise.resolve(this.#result(entry, admitDue(entry.room, entry.queue, now), now));
  }

  listRooms(now: number): Promise<{ rooms: Room[]; admitted: Ticket[] }> {
    const rooms: Room[] = [];
    const admitted: Ticket[] = [];
    for (const entry of this.#rooms.values()) {
      for (const ticket of admitDue(entry.room, entry.queue, now)) admitted.push(copyTicket(ticket));
      rooms.push(copyRoom(entry.room));
    }
    return Promise.resolve({ rooms, admitted });
  }

  enter(roomId: string, userId: string, ids: { ticket: string; admissionToken: string }, now: number): Promise<EnterOutcome> {
    const entry = this.#rooms.get(roomId);
    if (entry === undefined) return Promise.resolve({ kind: 'no_room' });
    const admitted = admitDue(entry.room, entry.queue, now);
    const userKey = `${roomId}\n${userId}`;
    const existingId = this.#byUser.get(userKey);
    const existing = existingId === undefined ? undefined : this.#tickets.get(existingId);
    if (existing !== undefined && existing.usedAt === null && ticketStatusAt(existing, now) !== 'EXPIRED') {
      return Promise.resolve({ kind: 'existing', ...this.#result(entry, admitted, now), ticket: copyTicket(existing) });
    }
    this.#endUsed(now);
    this.#evictable.sweep(now - this.#options.ttlMs);
    while (this.#tickets.size >= this.#options.maxTickets) {
      if (!this.#evictable.evictOne()) return Promise.resolve({ kind: 'full', ...this.#result(entry, admitted, now) });
    }
    const { room } = entry;
    room.entered += 1;
    const ticket: Ticket = {
      ticket: ids.ticket,
      roomId,
      userId,
      sequence: room.entered,
      status: 'WAITING',
      enteredAt: now,
      admittedAt: null,
      admissionToken: ids.admissionToken,
      expiresAt: null,
      usedAt: null,
      usedFor: null,
    };
    this.#tickets.set(ticket.ticket, ticket);
    this.#byUser.set(userKey, ticket.ticket);
    this.#byToken.set(ticket.admissionToken, ticket.ticket);
    entry.queue.waiting.push(ticket);
    // An empty room whose rate allows it admits the newcomer at once.
    admitted.push(...admitDue(room, entry.queue, now));
    return Promise.resolve({ kind: 'entered', ...this.#result(entry, admitted, now), ticket: copyTicket(ticket) });
  }

  getTicket(roomId: string, ticketId: string, now: number): Promise<(RoomResult & { ticket: Ticket }) | undefined> {
    const entry = this.#rooms.get(roomId);
    const ticket = this.#tickets.get(ticketId);
    if (entry === undefined || ticket === undefined || ticket.roomId !== roomId) return Promise.resolve(undefined);
    return Promise.resolve({ ...this.#result(entry, admitDue(entry.room, entry.queue, now), now), ticket: copyTicket(ticket) });
  }

  useToken(serviceId: string, token: string | undefined, orderId: string, now: number): Promise<UseTokenOutcome> {
    const admitted: Ticket[] = [];
    const roomIds: string[] = [];
    for (const entry of this.#rooms.values()) {
      if (!entry.room.active || !entry.room.protectedServiceIds.includes(serviceId)) continue;
      roomIds.push(entry.room.roomId);
      for (const ticket of admitDue(entry.room, entry.queue, now)) admitted.push(copyTicket(ticket));
    }
    if (roomIds.length === 0) return Promise.resolve({ kind: 'unprotected' });
    if (token === undefined) return Promise.resolve({ kind: 'missing', roomIds, admitted });
    const ticketId = this.#byToken.get(token);
    const ticket = ticketId === undefined ? undefined : this.#tickets.get(ticketId);
    if (ticket === undefined || !roomIds.includes(ticket.roomId) || ticket.status === 'WAITING') return Promise.resolve({ kind: 'invalid', roomIds, admitted });
    if (ticket.usedAt !== null) {
      const pending = (this.#rooms.get(ticket.roomId) as RoomEntry).queue.holdsSlot(ticket);
      return Promise.resolve({ kind: 'already_used', ticket: copyTicket(ticket), roomIds, admitted, pending });
    }
    if (ticketStatusAt(ticket, now) === 'EXPIRED') return Promise.resolve({ kind: 'expired', ticket: copyTicket(ticket), roomIds, admitted });
    const entry = this.#rooms.get(ticket.roomId) as RoomEntry;
    useAdmission(entry.room, ticket, orderId, now);
    this.#used.push(ticket);
    return Promise.resolve({ kind: 'used', ticket: copyTicket(ticket), admitted, nextDueAt: nextAdmissionDue(entry.room, entry.queue, now) });
  }

  spendToken(token: string, orderId: string, now: number): Promise<SpendOutcome> {
    const found = this.#usedFor(token, orderId);
    if (found === undefined) return Promise.resolve({ spent: false, roomId: null, admitted: [], nextDueAt: null });
    const { ticket, entry } = found;
    const admitted = admitDue(entry.room, entry.queue, now);
    // Spent already (this call made again), or its time over while its order was written: nothing.
    const spent = entry.queue.holdsSlot(ticket);
    if (spent) spendAdmission(entry.room, entry.queue, ticket, now);
    admitted.push(...admitDue(entry.room, entry.queue, now));
    const { admitted: shown, nextDueAt } = this.#result(entry, admitted, now);
    return Promise.resolve({ spent, roomId: entry.room.roomId, admitted: shown, nextDueAt });
  }

  releaseToken(token: string, orderId: string, now: number): Promise<{ released: boolean; admitted: Ticket[] }> {
    const found = this.#usedFor(token, orderId);
    if (found === undefined) return Promise.resolve({ released: false, admitted: [] });
    const { ticket, entry } = found;
    const admitted = admitDue(entry.room, entry.queue, now);
    const spent = !entry.queue.holdsSlot(ticket);
    releaseAdmission(entry.room, ticket, spent);
    this.#endedAt.delete(ticket.ticket);
    if (spent) entry.queue.reactivate(ticket);
    // Expires it at once if its time has passed (and admits whoever that lets in).
    admitted.push(...admitDue(entry.room, entry.queue, now));
    return Promise.resolve({ released: true, admitted: admitted.map(copyTicket) });
  }

  /** The ticket whose token is in use for `orderId`, and its room. */
  #usedFor(token: string, orderId: string): { ticket: Ticket; entry: RoomEntry } | undefined {
    const ticketId = this.#byToken.get(token);
    const ticket = ticketId === undefined ? undefined : this.#tickets.get(ticketId);
    const entry = ticket === undefined ? undefined : this.#rooms.get(ticket.roomId);
    return ticket === undefined || entry === undefined || ticket.usedFor !== orderId ? undefined : { ticket, entry };
  }

  stats(): Promise<StoreStats> {
    return Promise.resolve({ size: this.#tickets.size, max: this.#options.maxTickets });
  }

  sweep(now: number): Promise<number> {
    this.#endUsed(now);
    return Promise.resolve(this.#evictable.sweep(now - this.#options.ttlMs));
  }

  #result(entry: RoomEntry, admitted: Ticket[], now: number): RoomResult {
    return { room: copyRoom(entry.room), admitted: admitted.map(copyTicket), nextDueAt: nextAdmissionDue(entry.room, entry.queue, now) };
  }

  #newQueue(): MemoryRoomQueue {
    return new MemoryRoomQueue((ticket) => this.#ended(ticket, ticket.expiresAt as number));
  }

  /** Used tickets whose token would have expired by `now` end then (one given back and not used again since is live: skipped). */
  #endUsed(now: number): void {
    for (let next = this.#used.peek(); next !== undefined && (next.expiresAt as number) <= now; next = this.#used.peek()) {
      this.#used.pop();
      if (next.usedAt !== null && this.#tickets.get(next.ticket) === next && !this.#endedAt.has(next.ticket)) this.#ended(next, next.expiresAt as number);
    }
  }

  #ended(ticket: Ticket, at: number): void {
    this.#endedAt.set(ticket.ticket, at);
    this.#evictable.push(ticket.ticket);
  }

  #remove(ticket: Ticket): void {
    this.#tickets.delete(ticket.ticket);
    this.#endedAt.delete(ticket.ticket);
    this.#byToken.delete(ticket.admissionToken);
    const userKey = `${ticket.roomId}\n${ticket.userId}`;
    if (this.#byUser.get(userKey) === ticket.ticket) this.#byUser.delete(userKey);
  }
}
