import type { OutboxEventType } from '../fluxpay/model.ts';
import type { CreateOutcome } from '../fluxpay/ports.ts';
import type { Page, PageQuery, StoreStats } from '../ports.ts';
import type { InvoiceKind, Subscription, SubscriptionStatus } from './subscription.ts';

/**
 * The store port of FluxPay's billing subscriptions (issue 12). The rules of src/core/ports.ts
 * hold: each method is one atomic operation, records go in and out as copies, the store is
 * bounded and never evicts a subscription that still has work (only EXPIRED ones go).
 *
 * The outbox rule of FluxPay holds too: a change of a subscription and the outbox event that
 * reports it are one write (`create` and `update` write the event in the same step), so a webhook
 * subscriber never hears of a change that did not happen, nor misses one that did. Charges are not
 * part of these writes: they are orders and payments of the FluxPay engine (with their ledger
 * transactions and events), made before the change; a charge whose change is then refused is
 * refunded (see SubscriptionService).
 * @see issue 12 "Subscriptions", DESIGN.md "Ports"
 */

export type SubscriptionEventType = Extract<OutboxEventType, `subscription.${string}`>;

export const INVOICE_STATUSES = ['PAID', 'DECLINED', 'REFUNDED'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/** One charge of a subscription: the order and payment of the FluxPay engine that made it. */
export interface Invoice {
  /** `inv_<ULID>` */
  invoiceId: string;
  kind: InvoiceKind;
  planId: string;
  amount: number;
  currency: string;
  /** What it pays for (a PRORATION: the rest of the current period). */
  periodStart: number;
  periodEnd: number;
  /** PAID: collected; DECLINED: the payment failed; REFUNDED: collected, then given back (the change it paid for was refused). */
  status: InvoiceStatus;
  orderId: string;
  paymentKey: string;
  failureCode: string | null;
  createdAt: number;
}

/**
 * The card renewals are charged to, as a billing key: never the card number (document 002:
 * "결제 민감 정보 암호화 필수", PCI-DSS), only its last four digits, its expiry (checked again at each
 * charge) and the outcome the card rules gave it when it was registered.
 */
export interface StoredCard {
  last4: string;
  expMonth: number | null;
  expYear: number | null;
  planned: Readonly<{ status: 'APPROVED'; failureCode: null } | { status: 'FAILED'; failureCode: string }>;
}

export interface SubscriptionRecord extends Subscription {
  card: StoredCard;
  /** Oldest first; the newest MAX_INVOICES are kept. */
  invoices: Invoice[];
}

/** Invoices a record keeps: two years of a monthly plan (a PT1M plan renews 1,440 times a day, and 50,000 subscriptions at the bound must stay within a few hundred MB). */
export const MAX_INVOICES = 24;

export interface SubscriptionQuery extends PageQuery {
  userId?: string | undefined;
}

/** A change computed from the stored version `next.version − 1`, with what it adds. */
export interface SubscriptionChange {
  next: Subscription;
  /** An invoice to append (the charge that paid for this change, or the one that was declined). */
  invoice: Invoice | null;
  /** A new card for renewals (`POST /subscriptions/{id}/card`); null keeps the stored one. */
  card: StoredCard | null;
  /** The event reporting the change, written with it; null for a change no subscriber hears of. */
  event: { eventId: string; eventType: SubscriptionEventType } | null;
}

export type UpdateOutcome =
  | { kind: 'updated'; record: SubscriptionRecord }
  | { kind: 'not_found' }
  /** The stored version is not the one the change was computed from: nothing changed (a concurrent change won). */
  | { kind: 'conflict'; record: SubscriptionRecord };

export interface SubscriptionStore {
  /** Adds an ACTIVE subscription with its first invoice and writes `subscription.activated`, in one step; full at the bound (when no EXPIRED one can go). */
  create(record: SubscriptionRecord, eventId: string): Promise<CreateOutcome<SubscriptionRecord>>;
  get(subscriptionId: string): Promise<SubscriptionRecord | undefined>;
  /** Newest first; with `userId`, that user's. */
  list(query: SubscriptionQuery): Promise<Page<SubscriptionRecord>>;
  /** Applies a change only to the version it was computed from (a guarded transition), with its invoice and event, in one step. */
  update(change: SubscriptionChange): Promise<UpdateOutcome>;
  /** Every subscription held, in one step (for the reconciliation and the gauges). */
  snapshot(): Promise<SubscriptionRecord[]>;
  /** Subscriptions held by status (for the gauge). */
  counts(): Promise<Record<SubscriptionStatus, number>>;
  stats(): Promise<StoreStats>;
  /** Evicts EXPIRED subscriptions that expired before `now − TTL`; returns how many. */
  sweep(now: number): Promise<number>;
}
