import type { Redis } from 'ioredis';
import { sortTotals, type FluxPayAccount, type FluxPayAccountTotal, type FluxPayTransaction } from '../../core/fluxpay/ledger.ts';
import {
  chargeableCredits,
  isCreditChargeOrder,
  type CreditTransaction,
  type CreditUsage,
  type InboundEvent,
  type Order,
  type OutboxEvent,
  type Payment,
  type Saga,
  type SagaStepName,
  type Stamp,
} from '../../core/fluxpay/model.ts';
import type {
  CancelOrderOutcome,
  ChargeOutcome,
  CompleteOrderOutcome,
  ConfirmInput,
  ConfirmOutcome,
  CreateOutcome,
  CreditBalance,
  CreditsUsed,
  CreatePaymentOutcome,
  FluxPaySnapshot,
  FluxPayStore,
  OrderCounts,
  OrderQuery,
  OutboxQuery,
  RefundOutcome,
  ResolveOutcome,
  SagaResolution,
  StartSagaOutcome,
  StepOutcome,
  UseInput,
  UseOutcome,
} from '../../core/fluxpay/ports.ts';
import { DEFAULT_MAX_CREDIT_USERS } from '../../core/fluxpay/ports.ts';
import type { Page, PageQuery, StoreStats } from '../../core/ports.ts';
import { SCAN_BUDGET } from '../memory/id-list.ts';
import { callToken, defineScript, type Script, SWEEP_BATCH, sweepInBatches } from './connection.ts';
import { BOUND_SCRIPTS, BOUNDS } from './fluxpay/bounds.ts';
import { CREDIT_SCRIPTS, CREDITS } from './fluxpay/credits.ts';
import { HEAD } from './fluxpay/head.ts';
import { keepingReply } from './lua.ts';
import { ORDER_SCRIPTS, ORDERS } from './fluxpay/orders.ts';
import { fluxPayPrefix, LIST as OUTBOX_LIST, MARK, OF_ORDER, PENDING, STATS as OUTBOX_STATS, type RedisOutbox } from './fluxpay/outbox.ts';
import { recordFields } from './fluxpay/records.ts';
import { SAGA_SCRIPTS, SAGAS } from './fluxpay/sagas.ts';

export interface RedisFluxPayStoreOptions {
  /** Prefix of every key this store writes (REDIS_KEY_PREFIX); its keys are under `<keyPrefix>fp:`. */
  keyPrefix: string;
  /** Finished records older than this (from their creation) are evicted. */
  ttlMs: number;
  /** Orders held at most; also the bound of payments, sagas, usages, inbound events and outbox events, each. */
  maxRecords: number;
  /** Users with a credit balance held at most (FLUXPAY_MAX_CREDIT_USERS; DEFAULT_MAX_CREDIT_USERS when not given). */
  maxCreditUsers?: number;
}

const SCRIPTS = { ...ORDER_SCRIPTS, ...CREDIT_SCRIPTS, ...SAGA_SCRIPTS, ...BOUND_SCRIPTS };
type ScriptName = keyof typeof SCRIPTS;

/**
 * A script is a prelude (the helpers and the functions of each aggregate, in the order they call
 * each other) and its own part. Each function a prelude defines is a closure made on every run
 * (about 15 µs for all of them), so a script gets only the layers it calls: an order's operations
 * the orders', a credit operation the credits' too, and whatever sweeps (an insert makes room) or
 * runs sagas everything.
 */
const ORDERS_PRELUDE = `${HEAD}${ORDERS}`;
const CREDITS_PRELUDE = `${ORDERS_PRELUDE}${CREDITS}`;
const FULL_PRELUDE = `${CREDITS_PRELUDE}${SAGAS}${BOUNDS}`;
const FULL: ReadonlySet<string> = new Set(['create', 'use', 'sweep', 'snapshot', ...Object.keys(SAGA_SCRIPTS)]);

function preludeOf(name: string): string {
  if (FULL.has(name)) return FULL_PRELUDE;
  return name in CREDIT_SCRIPTS ? CREDITS_PRELUDE : ORDERS_PRELUDE;
}

const NO_STAMP: Stamp = { now: 0, eventIds: [], transactionId: '' };

/**
 * The changes whose script, run a second time (its reply lost, ioredis sent it again after a
 * reconnect), would answer otherwise than the first run did: a payment confirmed, an order
 * cancelled or completed, credits charged, used or refunded would answer PAY_003/PAY_004 to the
 * very call that made the change; a saga's step would answer refused or already (its step's
 * outcome lost: a compensation ending the saga not counted as finished), a saga's resolution by the
 * client's event a duplicate of its own event. Each such call carries a token and its script keeps its reply
 * under `<fp>reply:<token>` (lua.ts `keepingReply`). A run later than that (behind a proxy that
 * takes connections while Redis is away) answers as before (the scripts' own checks refuse the change again).
 */
const KEEPS_REPLY: ReadonlyMap<string, string> = new Map([
  ...['cancel', 'confirm', 'complete', 'charge', 'use', 'refund'].map((name): [string, string] => [name, 'true']),
  // Only the replies of a run that changed something (keepIf): a step or resolution refused, already
  // made, busy, a duplicate or of no saga answers the same run again, and is asked on every advance.
  ['step', "reply[1] == 'done' or reply[1] == 'failed'"],
  ['resolve', "reply[1] == 'resolved' or (reply[1] == 'final' and arg(4) == '1')"],
]);

/**
 * FluxPay's store in Redis, shared by every replica (issue 14). Each port method is one Lua
 * script, so a change, its ledger transaction and its outbox event are written together or not at
 * all, and of concurrent operations on one record (on any replica) each sees the others' whole
 * effect or none: of concurrent confirms of one order one approves, concurrent uses of a balance
 * never take it below zero, a usageId deducts once, an eventId starts one saga.
 *
 * Records are hashes that hold their JSON in parts (./fluxpay/records.ts), so a script changes a
 * field without decoding the record and renders the copy an outbox event carries by concatenation.
 * The outbox's sequence is one counter (INCR), so its order is write order across replicas; its
 * layout is shared with the billing store (./fluxpay/outbox.ts, `outbox`).
 *
 * Bounds as memory: payments count against the bound as orders do (a payment at the bound evicts
 * the oldest finished orders with theirs); finished orders (with their payments and ledger transactions, their net kept
 * per currency), finished sagas, usages and inbound events (a saga's once the saga has ended),
 * credit transactions and published outbox events go by TTL or the oldest at the bound; balances (a first charge for one user more than `maxCreditUsers` answers `users_full`), their running totals and the account totals never go, nor do
 * pending outbox events. Differences from memory: evicted records go in the order they were created
 * (memory: the order they finished; published events: the order they occurred, memory: the order
 * they were marked); TTLs follow the callers' clock, not Redis key expiry; an insert sweeps at most
 * 500 records of each kind (`sweep` takes them all).
 */
export class RedisFluxPayStore implements FluxPayStore {
  /** The outbox's layout, for stores whose changes write their events to it (RedisBillingStore). */
  readonly outbox: RedisOutbox;
  readonly #client: Redis;
  readonly #options: RedisFluxPayStoreOptions;
  readonly #p: string;
  readonly #scripts: Record<ScriptName, Script>;
  readonly #outboxScripts: Record<'pending' | 'mark' | 'list' | 'ofOrder' | 'stats', Script>;

  constructor(client: Redis, options: RedisFluxPayStoreOptions) {
    this.#client = client;
    this.#options = options;
    this.#p = fluxPayPrefix(options.keyPrefix);
    this.outbox = { prefix: this.#p, maxEvents: options.maxRecords };
    const scripts: Partial<Record<ScriptName, Script>> = {};
    for (const [name, body] of Object.entries(SCRIPTS)) {
      const keepIf = KEEPS_REPLY.get(name);
      scripts[name as ScriptName] = defineScript(client, `paysimFluxPay_${name}`, `${preludeOf(name)}${keepIf === undefined ? body : keepingReply("P .. 'reply:'", body, keepIf)}`);
    }
    this.#scripts = scripts as Record<ScriptName, Script>;
    this.#outboxScripts = {
      pending: defineScript(client, 'paysimFluxPayOutboxPending', PENDING),
      mark: defineScript(client, 'paysimFluxPayOutboxMark', MARK),
      list: defineScript(client, 'paysimFluxPayOutboxList', OUTBOX_LIST),
      ofOrder: defineScript(client, 'paysimFluxPayOutboxOfOrder', OF_ORDER),
      stats: defineScript(client, 'paysimFluxPayOutboxStats', OUTBOX_STATS),
    };
  }

  // ── orders and payments ──────────────────────────────────────────────────────────────────

  async createOrder(order: Order): Promise<CreateOutcome<Order>> {
    const { status, paymentKey, sagaId, chargedCredits, cancelReason, updatedAt, paidAt, completedAt, cancelledAt, ...fixed } = order;
    const fields = recordFields(
      fixed,
      { status, paymentKey, sagaId, chargedCredits, cancelReason, updatedAt, paidAt, completedAt, cancelledAt },
      { u: order.userId, a: order.amount, c: order.currency, sv: order.serviceId, cc: isCreditChargeOrder(order) ? chargeableCredits(order) : '', ca: order.createdAt },
    );
    const created = await this.#run('create', { ...NO_STAMP, now: order.createdAt }, order.orderId, order.userId, JSON.stringify(paymentKey), JSON.stringify(status), ...fields);
    return created === 1 ? { kind: 'created', record: { ...order } } : { kind: 'full' };
  }

  async getOrder(orderId: string): Promise<Order | undefined> {
    return parseOr<Order>((await this.#run('getOrder', NO_STAMP, orderId)) as string);
  }

  async listOrders(query: OrderQuery): Promise<Page<Order>> {
    const status = query.status === undefined ? '' : JSON.stringify(query.status);
    return pageOf<Order>(await this.#run('list', NO_STAMP, query.limit, query.cursor ?? '', query.userId ?? '', status, SCAN_BUDGET));
  }

  async orderCounts(): Promise<OrderCounts> {
    const counts: OrderCounts = { PENDING: 0, PAID: 0, COMPLETED: 0, CANCELLED: 0, cancelledAfterPayment: 0 };
    const flat = (await this.#run('counts', NO_STAMP)) as string[];
    for (let i = 0; i < flat.length; i += 2) counts[flat[i] as keyof OrderCounts] = Number(flat[i + 1]);
    return counts;
  }

  async cancelOrder(orderId: string, reason: string | null, stamp: Stamp): Promise<CancelOrderOutcome> {
    const [kind, order, payment] = (await this.#run('cancel', stamp, orderId, JSON.stringify(reason))) as [string, string?, string?];
    if (kind === 'not_found') return { kind };
    if (kind === 'cancelled') return { kind, order: parse<Order>(order), payment: parseOr<Payment>(payment) ?? null };
    return { kind: kind as 'order_state' | 'in_use', order: parse<Order>(order) };
  }

  async createPayment(payment: Payment): Promise<CreatePaymentOutcome> {
    const { status, failureCode, decidedBy, updatedAt, approvedAt, confirmedAt, failedAt, cancelledAt, ...fixed } = payment;
    const fields = recordFields(fixed, { status, failureCode, decidedBy, updatedAt, approvedAt, confirmedAt, failedAt, cancelledAt }, { o: payment.orderId });
    const [kind, order] = (await this.#run('createPayment', NO_STAMP, payment.orderId, payment.paymentKey, ...fields)) as [string, string?];
    if (kind === 'created') return { kind, payment: { ...payment, card: payment.card && { ...payment.card }, easyPay: payment.easyPay && { ...payment.easyPay } } };
    if (kind === 'order_state') return { kind, order: parse<Order>(order) };
    if (kind === 'full') return { kind };
    return { kind: 'order_not_found' };
  }

  async getPayment(paymentKey: string): Promise<Payment | undefined> {
    return parseOr<Payment>((await this.#run('getPayment', NO_STAMP, paymentKey)) as string);
  }

  async confirmPayment(input: ConfirmInput, stamp: Stamp): Promise<ConfirmOutcome> {
    const { decision } = input;
    const reply = await this.#run('confirm', stamp, input.paymentKey, input.orderId, input.amount, decision.status, JSON.stringify(decision.failureCode), JSON.stringify(decision.decidedBy));
    const [kind, payment, order] = reply as [string, string?, string?];
    switch (kind) {
      case 'approved':
      case 'failed':
      case 'amount_mismatch':
      case 'order_state':
        return { kind, payment: parse<Payment>(payment), order: parse<Order>(order) };
      case 'order_mismatch':
      case 'already_processed':
        return { kind, payment: parse<Payment>(payment) };
      default:
        return { kind: 'not_found' };
    }
  }

  async completeOrder(orderId: string, stamp: Stamp): Promise<CompleteOrderOutcome> {
    const [kind, order] = (await this.#run('complete', stamp, orderId)) as [string, string?];
    if (kind === 'not_found') return { kind };
    return { kind: kind as 'completed' | 'order_state', order: parse<Order>(order) };
  }

  // ── credits ──────────────────────────────────────────────────────────────────────────────

  async balance(userId: string): Promise<number> {
    return Number((await this.#client.hget(`${this.#p}bal`, userId)) ?? 0);
  }

  async chargeCredits(userId: string, orderId: string, stamp: Stamp): Promise<ChargeOutcome> {
    const maxUsers = this.#options.maxCreditUsers ?? DEFAULT_MAX_CREDIT_USERS;
    const [kind, order, transaction, balance] = (await this.#run('charge', stamp, userId, orderId, maxUsers)) as [string, string?, string?, number?];
    if (kind === 'not_found') return { kind };
    if (kind === 'charged') return { kind, order: parse<Order>(order), transaction: parse<CreditTransaction>(transaction), balance: balance as number };
    if (kind === 'users_full') return { kind, order: parse<Order>(order), max: maxUsers };
    return { kind: kind as 'not_charge_order' | 'already_charged' | 'order_state', order: parse<Order>(order) };
  }

  async useCredits(input: UseInput, stamp: Stamp): Promise<UseOutcome> {
    const reply = await this.#run('use', stamp, input.userId, input.serviceId, input.usageId, input.amount, input.creditUsageId);
    const [kind, usage, transaction, balance] = reply as [string, (string | number)?, string?, number?];
    switch (kind) {
      case 'duplicate':
        return { kind, usage: parse<CreditUsage>(usage as string) };
      case 'insufficient':
        return { kind, balance: usage as number, needed: input.amount };
      case 'deducted':
        return { kind, usage: parse<CreditUsage>(usage as string), transaction: parse<CreditTransaction>(transaction), balance: balance as number };
      default:
        return { kind: 'full' };
    }
  }

  async refundCredits(userId: string, usageId: string, stamp: Stamp): Promise<RefundOutcome> {
    const [kind, usage, transaction, balance] = (await this.#run('refund', stamp, userId, usageId)) as [string, string?, string?, number?];
    if (kind === 'not_found') return { kind };
    if (kind === 'already_refunded' || kind === 'saga_held') return { kind, usage: parse<CreditUsage>(usage) };
    return { kind: 'refunded', usage: parse<CreditUsage>(usage), transaction: parse<CreditTransaction>(transaction), balance: balance as number };
  }

  async creditBalances(limit: number): Promise<{ total: number; users: CreditBalance[] }> {
    const [total, rows] = (await this.#run('balances', NO_STAMP, limit)) as [number, Array<[string, string, string, string, string]>];
    return { total, users: rows.map(([userId, balance, charged, used, refunded]) => ({ userId, balance: Number(balance), charged: Number(charged), used: Number(used), refunded: Number(refunded) })) };
  }

  async transactions(userId: string, page: PageQuery): Promise<Page<CreditTransaction>> {
    return pageOf<CreditTransaction>(await this.#run('transactions', NO_STAMP, userId, page.limit, page.cursor ?? '', SCAN_BUDGET));
  }

  async creditsUsed(userId: string, since: number): Promise<CreditsUsed> {
    for (let attempt = 1; ; attempt++) {
      // {'used', total, since} or {'walk', total, the credits moved in all}.
      const [kind, total, third] = (await this.#run('usedSince', NO_STAMP, userId, since)) as [string, number, number];
      if (kind === 'used') return { total, since: third };
      // A walk takes several round trips: it agrees with the total only if no credit moved meanwhile
      // (else a period's base taken from the two would count that movement twice or not at all).
      const walked = await this.#walkUsedSince(userId, since);
      const [kindAfter, , movedAfter] = (await this.#run('usedSince', NO_STAMP, userId, since)) as [string, number, number];
      if ((kindAfter === 'walk' && movedAfter === third) || attempt === 5) return { total, since: walked };
    }
  }

  /** The use since `since` of a user with transactions an earlier version wrote (not indexed by time): a walk back to it. */
  async #walkUsedSince(userId: string, since: number): Promise<number> {
    let used = 0;
    let cursor: string | undefined;
    for (;;) {
      const page = await this.transactions(userId, { cursor, limit: 100 });
      for (const tx of page.data) {
        if (tx.createdAt < since) return used;
        if (tx.type === 'USE') used += tx.amount;
        else if (tx.type === 'REFUND') used -= tx.amount;
      }
      if (page.nextCursor === null) return used;
      cursor = page.nextCursor;
    }
  }

  // ── sagas ────────────────────────────────────────────────────────────────────────────────

  async startSaga(saga: Saga, event: InboundEvent): Promise<StartSagaOutcome> {
    const { status, steps, failureReason, updatedAt, completedAt, ...fixed } = saga;
    const fields = recordFields(
      fixed,
      { status, steps, failureReason, updatedAt, completedAt },
      {
        u: saga.userId,
        us: saga.usageId,
        sv: saga.serviceId,
        o: saga.orderId ?? '',
        cr: saga.credits ?? '',
        plan: saga.plan.join(','),
        sd: `,${saga.steps.map((s) => `${s.step}:${s.status},`).join('')}`,
        ca: saga.createdAt,
      },
    );
    const reply = await this.#run('start', NO_STAMP, saga.sagaId, saga.userId, saga.usageId, saga.createdAt, ...eventArgs(event), ...fields);
    const [kind, record, other] = reply as [string, string?, string?];
    switch (kind) {
      case 'started':
        return { kind, saga: { ...saga, steps: saga.steps.map((s) => ({ ...s })) } };
      case 'usage_taken':
        return { kind, saga: parse<Saga>(record) };
      case 'full':
        return { kind };
      default:
        return seenOutcome(kind, record, other);
    }
  }

  async recentSagas(limit: number): Promise<{ total: number; sagas: Saga[] }> {
    const [total, sagas] = (await this.#run('recent', NO_STAMP, limit)) as [number, string[]];
    return { total, sagas: sagas.map((json) => parse<Saga>(json)) };
  }

  async getSaga(sagaId: string): Promise<Saga | undefined> {
    return parseOr<Saga>((await this.#run('getSaga', NO_STAMP, sagaId)) as string);
  }

  async sagaOfUsage(userId: string, usageId: string): Promise<Saga | undefined> {
    return parseOr<Saga>((await this.#run('ofUsage', NO_STAMP, userId, usageId)) as string);
  }

  async runSagaStep(sagaId: string, step: SagaStepName, stamp: Stamp, creditUsageId: string): Promise<StepOutcome> {
    const [kind, saga, reason] = (await this.#run('step', stamp, sagaId, step, creditUsageId)) as [string, string?, string?];
    if (kind === 'not_found') return { kind };
    if (kind === 'failed') return { kind, saga: parse<Saga>(saga), reason: reason as string };
    return { kind: kind as 'done' | 'already' | 'refused', saga: parse<Saga>(saga) };
  }

  async resolveSaga(sagaId: string, resolution: SagaResolution, event: InboundEvent | null, stamp: Stamp): Promise<ResolveOutcome> {
    const reason = resolution.to === 'COMPENSATING' ? JSON.stringify(resolution.reason) : 'null';
    const withEvent = event === null ? ['', '', '', '', ''] : ['1', ...eventArgs(event)];
    const [kind, record, other] = (await this.#run('resolve', stamp, sagaId, resolution.to, reason, ...withEvent)) as [string, string?, string?];
    switch (kind) {
      case 'not_found':
        return { kind };
      case 'resolved':
      case 'busy':
      case 'final':
      case 'contradicted':
        return { kind, saga: parse<Saga>(record) };
      default:
        return seenOutcome(kind, record, other);
    }
  }

  async inboundEvent(eventId: string): Promise<InboundEvent | undefined> {
    return parseOr<InboundEvent>((await this.#run('inbound', NO_STAMP, eventId)) as string);
  }

  // ── outbox ───────────────────────────────────────────────────────────────────────────────

  async pendingOutbox(limit: number): Promise<OutboxEvent[]> {
    return ((await this.#outboxScripts.pending([], [this.#p, limit])) as string[]).map((json) => parse<OutboxEvent>(json));
  }

  async markPublished(eventIds: readonly string[], now: number): Promise<number> {
    if (eventIds.length === 0) return 0;
    // MARK keeps the call's token: run again after a lost reply, it still counts what it marked.
    return Number(await this.#outboxScripts.mark([], [this.#p, now, callToken(), this.#options.maxRecords, ...eventIds]));
  }

  async listOutbox(query: OutboxQuery): Promise<Page<OutboxEvent>> {
    const status = query.status === undefined ? '' : JSON.stringify(query.status);
    return pageOf<OutboxEvent>(await this.#outboxScripts.list([], [this.#p, query.limit, query.cursor ?? '', status, SCAN_BUDGET]));
  }

  async orderOutbox(orderId: string, limit: number): Promise<{ events: OutboxEvent[]; total: number }> {
    const [total, events] = (await this.#outboxScripts.ofOrder([], [this.#p, orderId, limit])) as [number, string[]];
    return { events: events.map((json) => parse<OutboxEvent>(json)), total };
  }

  async outboxStats(): Promise<{ pending: number; oldestPendingAt: number | null; published: number }> {
    const [pending, oldest, published] = (await this.#outboxScripts.stats([], [this.#p])) as [number, string, number];
    return { pending, oldestPendingAt: oldest === '' ? null : Number(oldest), published };
  }

  // ── ledger, reconciliation, bounds ───────────────────────────────────────────────────────

  async ledger(reference: string): Promise<FluxPayTransaction[]> {
    return (await this.#client.lrange(`${this.#p}l:${reference}`, 0, -1)).map((json) => parse<FluxPayTransaction>(json));
  }

  async snapshot(): Promise<FluxPaySnapshot> {
    const reply = (await this.#run('snapshot', NO_STAMP)) as [string[], string[], string[], string[], string[], string[], string[], string[], number, number];
    const [orders, payments, usages, sagas, balances, totals, accounts, evicted, pending, published] = reply;
    const creditTotals = new Map<string, { userId: string; charged: number; used: number; refunded: number }>();
    for (const [field, value] of pairs(totals)) {
      const [userId, total] = field.split('\t') as [string, 'charged' | 'used' | 'refunded'];
      const row = creditTotals.get(userId) ?? { userId, charged: 0, used: 0, refunded: 0 };
      creditTotals.set(userId, row);
      row[total] = Number(value);
    }
    const rows = new Map<string, FluxPayAccountTotal>();
    for (const [field, value] of pairs(accounts)) {
      const [account, unit, side] = field.split('\t') as [FluxPayAccount, string, 'd' | 'c'];
      const row = rows.get(`${account} ${unit}`) ?? { account, unit, debits: 0, credits: 0, balance: 0 };
      rows.set(`${account} ${unit}`, row);
      if (side === 'd') row.debits = Number(value);
      else row.credits = Number(value);
      row.balance = row.debits - row.credits;
    }
    return {
      orders: orders.map((json) => parse<Order>(json)),
      payments: payments.map((json) => parse<Payment>(json)),
      usages: usages.map((json) => parse<CreditUsage>(json)),
      sagas: sagas.map((json) => parse<Saga>(json)),
      balances: pairs(balances).map(([userId, balance]) => ({ userId, balance: Number(balance) })),
      creditTotals: [...creditTotals.values()],
      accounts: sortTotals([...rows.values()]),
      evictedNetCollected: Object.fromEntries(pairs(evicted).map(([unit, net]) => [unit, Number(net)])),
      outbox: { pending, published },
    };
  }

  async stats(): Promise<StoreStats> {
    return { size: Number(await this.#run('stats', NO_STAMP)), max: this.#options.maxRecords };
  }

  async paymentStats(): Promise<StoreStats> {
    return { size: Number(await this.#run('paymentStats', NO_STAMP)), max: this.#options.maxRecords };
  }

  async creditUserStats(): Promise<StoreStats> {
    return { size: Number(await this.#run('creditUserStats', NO_STAMP)), max: this.#options.maxCreditUsers ?? DEFAULT_MAX_CREDIT_USERS };
  }

  /**
   * Reads the keys an earlier version left (a Redis kept across an upgrade): that version kept
   * every usage and every inbound event in the set of those that may go, where this one also keeps
   * the set of all of them (a saga's usage and events stay until the saga ends). Answers how many
   * records it took in (0 when there was nothing to do). Those of sagas still running then stay
   * evictable, as they were.
   */
  async adoptEarlierLayout(): Promise<number> {
    return Number(await this.#run('adoptEarlierLayout', NO_STAMP));
  }

  async sweep(now: number): Promise<number> {
    return sweepInBatches(async () => (await this.#run('sweep', { ...NO_STAMP, now })) as [number, number]);
  }

  /** Runs a script with the head every FluxPay script reads (./fluxpay/head.ts), then `args`. */
  #run(name: ScriptName, stamp: Stamp, ...args: Array<string | number>): Promise<unknown> {
    const { maxRecords, ttlMs } = this.#options;
    const [a = '', b = '', c = ''] = stamp.eventIds;
    const all = [this.#p, maxRecords, ttlMs, SWEEP_BATCH, stamp.now, stamp.transactionId, a, b, c, ...args];
    return this.#scripts[name]([], KEEPS_REPLY.has(name) ? [...all, callToken()] : all);
  }
}

/** An inbound event's arguments: eventId, its JSON without sagaId, fingerprint, receivedAt. */
function eventArgs(event: InboundEvent): string[] {
  const { sagaId: _sagaId, ...base } = event;
  return [event.eventId, JSON.stringify(base), event.fingerprint, String(event.receivedAt)];
}

function seenOutcome(kind: string, event: string | undefined, saga: string | undefined): { kind: 'duplicate'; event: InboundEvent; saga: Saga | undefined } | { kind: 'conflict'; event: InboundEvent } {
  if (kind === 'conflict') return { kind, event: parse<InboundEvent>(event) };
  return { kind: 'duplicate', event: parse<InboundEvent>(event), saga: parseOr<Saga>(saga) };
}

function parse<T>(json: string | undefined): T {
  return JSON.parse(json as string) as T;
}

/** undefined for '' (no such record). */
function parseOr<T>(json: string | undefined): T | undefined {
  return json === undefined || json === '' ? undefined : (JSON.parse(json) as T);
}

function pageOf<T>(reply: unknown): Page<T> {
  const [cursor, records] = reply as [string, string[]];
  return { data: records.map((json) => parse<T>(json)), nextCursor: cursor === '' ? null : cursor };
}

function pairs(flat: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}
