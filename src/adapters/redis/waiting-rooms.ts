import type { Redis } from 'ioredis';
import type { StoreStats } from '../../core/ports.ts';
import type { EnterOutcome, RoomResult, SpendOutcome, UseTokenOutcome, WaitingRoomStore } from '../../core/waiting-room/ports.ts';
import type { Room, RoomSettings, Ticket, TicketStatus } from '../../core/waiting-room/room.ts';
import { fieldsOf } from './lua.ts';
import { ENTER, GET_ROOM, GET_TICKET, LIST_ROOMS, PUT_ROOM, RELEASE_TOKEN, SPEND_TOKEN, STATS, SWEEP, USE_TOKEN } from './waiting-rooms-lua.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';

export interface RedisWaitingRoomStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** Rooms held at once; a room is never evicted, so creating one more is refused. */
  maxRooms: number;
  /** Tickets held across every room; beyond it the oldest ended ones go first, and a store of live ones refuses. */
  maxTickets: number;
  /** Ended tickets are kept this long after they ended (expired; used: when their token would have expired). */
  ttlMs: number;
}

type Flat = string[];
type ResultReply = [Flat, Flat[], string];

/**
 * Waiting rooms and their tickets in Redis, shared by every replica. A room's queue is a sorted
 * set of its waiting tickets by sequence number and its admitted tokens a sorted set by expiry, as
 * source document 002 keeps the queue; each port operation is one Lua script that first brings the
 * room up to `now` with room.ts's `admitDue`, carried over step for step (the same admission
 * times to the bit: computed times are written with 17 significant digits), then does its work.
 * So concurrent entries, on any replicas, get distinct gap-free sequence numbers, one user gets one
 * live ticket, and a token is used at most once.
 *
 * Bounds: ended tickets (expired, or their token used) wait in a sorted set by when they ended,
 * from which both the TTL sweep and the size bound take (only those ended by then); waiting and
 * admitted tickets are never evicted, and a room never is. A used ticket counts as ended when its
 * token would have expired: until then the order guard may give its token back (the order was not
 * created), so it must still be here. Differences from memory: ended tickets go strictly in the order
 * they ended (memory: roughly, in the order it noticed); TTLs follow the callers' clock, not Redis
 * key expiry; an `enter` sweeps at most 500 tickets past the TTL (`sweep` takes them all).
 */
export class RedisWaitingRoomStore implements WaitingRoomStore {
  readonly #options: RedisWaitingRoomStoreOptions;
  readonly #keys: string[];
  readonly #w: string;
  readonly #scripts: Record<'putRoom' | 'getRoom' | 'listRooms' | 'enter' | 'getTicket' | 'useToken' | 'spendToken' | 'releaseToken' | 'sweep' | 'stats', Script>;

  constructor(client: Redis, options: RedisWaitingRoomStoreOptions) {
    this.#options = options;
    this.#w = `${options.keyPrefix}wr:`;
    this.#keys = ['rooms', 'seq', 'tokens', 'ended', 'n'].map((name) => this.#w + name);
    this.#scripts = {
      putRoom: defineScript(client, 'paysimRoomsPut', PUT_ROOM),
      getRoom: defineScript(client, 'paysimRoomsGet', GET_ROOM),
      listRooms: defineScript(client, 'paysimRoomsList', LIST_ROOMS),
      enter: defineScript(client, 'paysimRoomsEnter', ENTER),
      getTicket: defineScript(client, 'paysimRoomsGetTicket', GET_TICKET),
      useToken: defineScript(client, 'paysimRoomsUseToken', USE_TOKEN),
      spendToken: defineScript(client, 'paysimRoomsSpendToken', SPEND_TOKEN),
      releaseToken: defineScript(client, 'paysimRoomsReleaseToken', RELEASE_TOKEN),
      sweep: defineScript(client, 'paysimRoomsSweep', SWEEP),
      stats: defineScript(client, 'paysimRoomsStats', STATS),
    };
  }

  async putRoom(roomId: string, settings: RoomSettings, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'full'; maxRooms: number }> {
    const [kind, ...rest] = await this.#put(roomId, settings, now);
    if (kind === 'full') return { kind, maxRooms: this.#options.maxRooms };
    return { kind: kind as 'created' | 'updated', ...decodeResult(rest) };
  }

  async createRoom(roomId: string, settings: RoomSettings, now: number, declared?: string): Promise<(RoomResult & { kind: 'created' }) | { kind: 'exists' } | { kind: 'full'; maxRooms: number }> {
    const [kind, ...rest] = await this.#put(roomId, settings, now, 'create', declared);
    if (kind === 'full') return { kind, maxRooms: this.#options.maxRooms };
    if (kind === 'exists') return { kind };
    return { kind: 'created', ...decodeResult(rest) };
  }

  async declareRoom(roomId: string, settings: RoomSettings, fingerprint: string, now: number): Promise<(RoomResult & { kind: 'created' | 'updated' }) | { kind: 'kept' } | { kind: 'full'; maxRooms: number }> {
    const [kind, ...rest] = await this.#put(roomId, settings, now, 'declare', fingerprint);
    if (kind === 'full') return { kind, maxRooms: this.#options.maxRooms };
    if (kind === 'kept') return { kind };
    return { kind: kind as 'created' | 'updated', ...decodeResult(rest) };
  }

  async #put(roomId: string, settings: RoomSettings, now: number, mode: '' | 'create' | 'declare' = '', declared = ''): Promise<['full' | 'created' | 'updated' | 'exists' | 'kept', ...ResultReply]> {
    const args = [this.#w, roomId, now, this.#options.maxRooms, settings.admitPerSecond, settings.admissionTtlSeconds, JSON.stringify(settings.protectedServiceIds), settings.maxActive ?? '', settings.active ? '1' : '0', mode, declared, callToken()];
    return (await this.#scripts.putRoom(this.#keys, args)) as ['full' | 'created' | 'updated' | 'exists' | 'kept', ...ResultReply];
  }

  async getRoom(roomId: string, now: number): Promise<RoomResult | undefined> {
    const reply = (await this.#scripts.getRoom(this.#keys, [this.#w, roomId, now, callToken()])) as ResultReply | [];
    return reply.length === 0 ? undefined : decodeResult(reply);
  }

  async listRooms(now: number): Promise<{ rooms: Room[]; admitted: Ticket[] }> {
    const [rooms, admitted] = (await this.#scripts.listRooms(this.#keys, [this.#w, now, callToken()])) as [Flat[], Flat[]];
    return { rooms: rooms.map(decodeRoom), admitted: admitted.map(decodeTicket) };
  }

  async enter(roomId: string, userId: string, ids: { ticket: string; admissionToken: string }, now: number): Promise<EnterOutcome> {
    const args = [this.#w, roomId, userId, ids.ticket, ids.admissionToken, now, this.#options.maxTickets, this.#options.ttlMs, SWEEP_BATCH, callToken()];
    const [kind, room, admitted, nextDue, ticket] = (await this.#scripts.enter(this.#keys, args)) as ['no_room' | 'full' | 'entered' | 'existing', ...ResultReply, Flat];
    if (kind === 'no_room') return { kind };
    if (kind === 'full') return { kind, ...decodeResult([room, admitted, nextDue]) };
    return { kind, ...decodeResult([room, admitted, nextDue]), ticket: decodeTicket(ticket) };
  }

  async getTicket(roomId: string, ticket: string, now: number): Promise<(RoomResult & { ticket: Ticket }) | undefined> {
    const reply = (await this.#scripts.getTicket(this.#keys, [this.#w, roomId, ticket, now, callToken()])) as [...ResultReply, Flat] | [];
    if (reply.length === 0) return undefined;
    const [room, admitted, nextDue, found] = reply;
    return { ...decodeResult([room, admitted, nextDue]), ticket: decodeTicket(found) };
  }

  async useToken(serviceId: string, token: string | undefined, orderId: string, now: number): Promise<UseTokenOutcome> {
    const args = [this.#w, serviceId, token === undefined ? '0' : '1', token ?? '', orderId, now, callToken()];
    // The fifth item: the next due time of `used`, whether an `already_used` token is pending (1 | 0).
    const [kind, roomIds, flats, ticket, fifth] = (await this.#scripts.useToken(this.#keys, args)) as [UseTokenOutcome['kind'], string[]?, Flat[]?, Flat?, (string | number)?];
    if (kind === 'unprotected') return { kind };
    const admitted = (flats as Flat[]).map(decodeTicket);
    if (kind === 'missing' || kind === 'invalid') return { kind, roomIds: roomIds as string[], admitted };
    if (kind === 'used') return { kind, ticket: decodeTicket(ticket as Flat), admitted, nextDueAt: dueAt(fifth as string) };
    if (kind === 'already_used') return { kind, ticket: decodeTicket(ticket as Flat), roomIds: roomIds as string[], admitted, pending: fifth === 1 };
    return { kind, ticket: decodeTicket(ticket as Flat), roomIds: roomIds as string[], admitted };
  }

  async spendToken(token: string, orderId: string, now: number): Promise<SpendOutcome> {
    const [spent, admitted, nextDue, roomId] = (await this.#scripts.spendToken(this.#keys, [this.#w, token, orderId, now, callToken()])) as [number, Flat[], string, string];
    return { spent: spent === 1, roomId: roomId === '' ? null : roomId, admitted: admitted.map(decodeTicket), nextDueAt: dueAt(nextDue) };
  }

  async releaseToken(token: string, orderId: string, now: number): Promise<{ released: boolean; admitted: Ticket[] }> {
    const [released, admitted] = (await this.#scripts.releaseToken(this.#keys, [this.#w, token, orderId, now, callToken()])) as [number, Flat[]];
    return { released: released === 1, admitted: admitted.map(decodeTicket) };
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#scripts.stats(this.#keys, [])), max: this.#options.maxTickets };
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#scripts.sweep(this.#keys, [this.#w, now - this.#options.ttlMs, SWEEP_BATCH])) as [number, number]);
  }
}

function decodeResult([room, admitted, nextDue]: ResultReply): RoomResult {
  return { room: decodeRoom(room), admitted: admitted.map(decodeTicket), nextDueAt: dueAt(nextDue) };
}

function dueAt(encoded: string): number | null {
  return encoded === '' ? null : Number(encoded);
}

/** A number the scripts wrote: 'inf' and '-inf' for the infinities (Lua's spelling). */
function number(encoded: string): number {
  if (encoded === 'inf') return Number.POSITIVE_INFINITY;
  if (encoded === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(encoded);
}

function orNull(encoded: string | undefined): number | null {
  return encoded === undefined || encoded === '' ? null : Number(encoded);
}

function decodeRoom(flat: Flat): Room {
  const f = fieldsOf(flat);
  return {
    roomId: f.id as string,
    admitPerSecond: Number(f.aps),
    admissionTtlSeconds: Number(f.ttl),
    protectedServiceIds: JSON.parse(f.psi as string) as string[],
    maxActive: orNull(f.ma),
    active: f.act === '1',
    createdAt: Number(f.ca),
    updatedAt: Number(f.ua),
    entered: Number(f.ent),
    admitted: Number(f.adm),
    expired: Number(f.exp),
    used: Number(f.used),
    activeCount: Number(f.ac),
    lastAdmittedAt: orNull(f.laa),
    nextAdmissionAt: number(f.naa as string),
  };
}

function decodeTicket(flat: Flat): Ticket {
  const f = fieldsOf(flat);
  return {
    ticket: f.id as string,
    roomId: f.r as string,
    userId: f.u as string,
    sequence: Number(f.sq),
    status: f.st as TicketStatus,
    enteredAt: Number(f.ea),
    admittedAt: orNull(f.aa),
    admissionToken: f.tk as string,
    expiresAt: orNull(f.xa),
    usedAt: orNull(f.ua),
    usedFor: f.uf === '' ? null : (f.uf as string),
  };
}
