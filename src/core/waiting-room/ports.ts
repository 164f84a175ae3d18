import type { StoreStats } from '../ports.ts';
import type { Room, RoomSettings, Ticket } from './room.ts';

/**
 * The store of waiting rooms and their tickets. Every operation first brings the room it touches up
 * to `now` (`admitDue` in room.ts: due admissions and expiries, each at its own time) and returns
 * the tickets that this admitted, so the caller can publish them; each operation is one atomic
 * step (one Lua script for Redis), so concurrent entries get distinct, gap-free sequence numbers
 * and a token is used at most once. Returns copies.
 * @see issue 12 "Virtual waiting room"
 */
export interface WaitingRoomStore {
  /** Creates a room or changes a running one (its queue keeps its order); `full` when creating one more than the store's maximum of rooms. */
  putRoom(roomId: string, settings: RoomSettings, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'full'; maxRooms: number }>;
  /**
   * Creates a room only where none exists (`exists` otherwise: nothing changed); `full` as for
   * `putRoom`. A room of the billing policy is created with its `declared` fingerprint (see `declareRoom`).
   */
  createRoom(roomId: string, settings: RoomSettings, now: number, declared?: string): Promise<(RoomResult & { kind: 'created' }) | { kind: 'exists' } | { kind: 'full'; maxRooms: number }>;
  /**
   * A room the billing policy declares, at a start: created where none exists, `kept` (nothing
   * changed) when the room was last declared with this fingerprint (by any process on the store,
   * whatever a `putRoom` changed since), else changed as `putRoom` does; the room keeps
   * `fingerprint` as its declaration. `full` as for `putRoom`.
   */
  declareRoom(roomId: string, settings: RoomSettings, fingerprint: string, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'kept' } | { kind: 'full'; maxRooms: number }>;
  getRoom(roomId: string, now: number): Promise<RoomResult | undefined>;
  /** Every room, in creation order. */
  listRooms(now: number): Promise<{ rooms: Room[]; admitted: Ticket[] }>;
  /**
   * Enters `userId` into the room: a user with a ticket still WAITING or ADMITTED (unused, unexpired)
   * gets that ticket again (`existing`); otherwise a new ticket at the back of the queue, with the
   * ids given. `full` when the store holds its maximum of tickets and none can be evicted.
   */
  enter(roomId: string, userId: string, ids: { ticket: string; admissionToken: string }, now: number): Promise<EnterOutcome>;
  getTicket(roomId: string, ticket: string, now: number): Promise<(RoomResult & { ticket: Ticket }) | undefined>;
  /**
   * Guards an order of `serviceId`: when no active room protects the service, `unprotected`;
   * otherwise `token` must be the admission token of a ticket ADMITTED by one of those rooms, not
   * expired and never used, and it is used for `orderId` in the same step. It keeps its slot of
   * `maxActive` until `spendToken` (its order written) or its expiry.
   */
  useToken(serviceId: string, token: string | undefined, orderId: string, now: number): Promise<UseTokenOutcome>;
  /**
   * The order `useToken` used `token` for is written: the token's slot is free from `now` (a room at
   * `maxActive` may admit its next user). `spent` false when the token is not in use for `orderId`,
   * or its slot is free already (spent before, or its time over): nothing changes then.
   */
  spendToken(token: string, orderId: string, now: number): Promise<SpendOutcome>;
  /**
   * Gives back a token `useToken` used for `orderId` when that order was not created after all:
   * the ticket is ADMITTED and unused again until its own expiry (EXPIRED at once if that has
   * passed). `released` false when the token is not in use for `orderId` (nothing changes).
   */
  releaseToken(token: string, orderId: string, now: number): Promise<{ released: boolean; admitted: Ticket[] }>;
  stats(): Promise<StoreStats>;
  /** Drops tickets that ended (expired, or used) more than the TTL ago; returns how many. */
  sweep(now: number): Promise<number>;
}

export interface RoomResult {
  room: Room;
  /** Tickets this call admitted (due since the room was last brought up to date), in order. */
  admitted: Ticket[];
  /** When the room's next admission falls due if nothing else happens (`nextAdmissionDue` in room.ts); null: none is. */
  nextDueAt: number | null;
}

/** `full` carries the room as the refused entry left it: the tickets it admitted on the way (due by `now`) are admitted all the same, and must be published. */
export type EnterOutcome = (RoomResult & { kind: 'entered' | 'existing'; ticket: Ticket }) | { kind: 'no_room' } | (RoomResult & { kind: 'full' });

/** `roomId`: the token's room (null when the token is not in use for the order): `admitted` and `nextDueAt` are that room's. */
export interface SpendOutcome {
  spent: boolean;
  roomId: string | null;
  admitted: Ticket[];
  nextDueAt: number | null;
}

export type UseTokenOutcome =
  | { kind: 'unprotected' }
  /** `nextDueAt`: the ticket's room's (the used token still holds its slot: `spendToken`). */
  | { kind: 'used'; ticket: Ticket; admitted: Ticket[]; nextDueAt: number | null }
  /** No token, or one no protecting room gave out. */
  | { kind: 'missing' | 'invalid'; roomIds: string[]; admitted: Ticket[] }
  | { kind: 'expired'; ticket: Ticket; roomIds: string[]; admitted: Ticket[] }
  /**
   * `pending`: the token still holds its slot (its order not written yet, nor its time over): the
   * order may still fail and the token come back (`releaseToken`).
   */
  | { kind: 'already_used'; ticket: Ticket; roomIds: string[]; admitted: Ticket[]; pending: boolean };
