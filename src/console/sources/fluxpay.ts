import { DomainError } from '../../core/errors.ts';
import { isFluxPayEvent, type DomainEvent } from '../../core/events.ts';
import { FluxPayError } from '../../core/fluxpay/errors.ts';
import type { Order, Payment, Saga } from '../../core/fluxpay/model.ts';
import type { FluxPayStore } from '../../core/fluxpay/ports.ts';
import type { FluxPayService } from '../../core/fluxpay/service.ts';
import type { WaitingRoomService } from '../../core/waiting-room/service.ts';
import { FLUXPAY_SUBJECT_KIND } from '../../dialects/fluxpay/webhook-payload.ts';
import { offeredChoice, text, type FormBody } from '../forms.ts';
import { notice } from '../layout.ts';
import { html, iso, money, query, raw, wholeNumber, type Html } from '../html.ts';
import { deliveriesOf, rowsOf, ulidCursor, type HistoryEntry, type PaymentAction, type PaymentDetail, type PaymentRow, type PaymentSource, type Panel, type PanelPage, type StatusGroup } from '../sources.ts';
import type { SubscriptionStore } from '../../core/subscriptions/ports.ts';
import { billingPanel } from './billing.ts';
import { isWaitingRoomEvent, waitingRoomsPanel } from './waiting-rooms.ts';

/**
 * FluxPay (issue 11) in the console: its orders (with their PG payments) in the payments view, and
 * the FluxPay page (credit balances, usage sagas with their steps, the outbox, the webhook
 * subscriptions, the billing subscriptions: ./billing.ts, the reconciliation, the waiting rooms:
 * ./waiting-rooms.ts).
 * Orders are read and cancelled through the same FluxPayService as the API; balances and sagas
 * come from the store's bounded listings (creditBalances, recentSagas: never every record, which
 * with Redis would hold the server for the whole read; creditBalances read every user's before
 * 2026-12-06, a review), the outbox from its listing, an order's
 * outbox events from the outbox's index by order (orderOutbox), and only the reconciliation figure
 * from the whole snapshot.
 *
 * Live: the service tells the bus of each order and payment created, and the outbox relay of each
 * event it publishes (`fluxpay.*`, src/core/events.ts), and the waiting-room service of each
 * admission (`waiting_room.admitted`), so the regions refresh within a second.
 */

export interface FluxPayConsoleDeps {
  service: FluxPayService;
  store: FluxPayStore;
  rooms: WaitingRoomService;
  /** Billing subscriptions (issue 12), for their panel (./billing.ts). */
  billing: SubscriptionStore;
  /** FLUXPAY_WEBHOOK_URL: where every event goes besides the subscriptions' URLs. */
  defaultWebhookUrl?: string | undefined;
}

/** Outbox events an order's detail shows at most (its newest; an order has a handful, a subscription's order a few dozen). */
const ORDER_EVENTS = 200;
/** Rows a panel shows at most (the rest are counted). */
const PANEL_ROWS = 100;
const SAGAS_SHOWN = 50;
const OUTBOX_PAGE = 25;
const MISMATCHES_SHOWN = 20;

function group(order: Order): StatusGroup {
  switch (order.status) {
    case 'PENDING':
      return 'pending';
    case 'PAID':
    case 'COMPLETED':
      return 'completed';
    case 'CANCELLED':
      // Cancelled after payment: the payment was refunded.
      return order.paymentKey === null ? 'cancelled' : 'refunded';
  }
}

function row(order: Order): PaymentRow {
  return {
    dialect: 'fluxpay',
    id: order.orderId,
    reference: `${order.userId} · ${order.orderName}`,
    amount: order.amount,
    currency: order.currency,
    status: order.status,
    group: group(order),
    createdAt: order.createdAt,
    updatedAt: order.updatedAt,
  };
}

function history(order: Order, payment: Payment | undefined): HistoryEntry[] {
  const entries: HistoryEntry[] = [{ at: order.createdAt, status: 'PENDING', event: 'fluxpay.order_created', note: `order created (${order.orderName})` }];
  if (payment !== undefined) {
    entries.push({ at: payment.createdAt, status: 'PENDING', event: 'fluxpay.payment_created', note: `payment ${payment.paymentKey} READY (${payment.method})` });
    if (payment.approvedAt !== null) entries.push({ at: payment.approvedAt, status: 'PAID', event: 'payment.approved', note: `approved (decided by ${payment.decidedBy ?? '—'})` });
  }
  if (order.completedAt !== null) entries.push({ at: order.completedAt, status: 'COMPLETED', event: 'order.completed', note: order.chargedCredits === null ? 'completed' : `${wholeNumber(order.chargedCredits)} credits charged` });
  if (order.cancelledAt !== null) entries.push({ at: order.cancelledAt, status: 'CANCELLED', event: 'order.cancelled', note: `cancelled${order.cancelReason === null ? '' : `: ${order.cancelReason}`}${order.paymentKey === null ? '' : '; payment refunded'}` });
  return entries.sort((a, b) => a.at - b.at);
}

function actions(order: Order): PaymentAction[] {
  if ((order.status === 'PENDING' || order.status === 'PAID') && order.sagaId === null) {
    return [{ name: 'cancel_order', label: order.status === 'PAID' ? 'Cancel order (refunds its payment)' : 'Cancel order', fields: [{ name: 'reason', label: 'Reason', type: 'text', required: false, hint: 'optional' }] }];
  }
  return [];
}

/** An order by its orderId, or by its payment's paymentKey. */
async function orderOf(store: FluxPayStore, id: string): Promise<Order | undefined> {
  const order = await store.getOrder(id);
  if (order !== undefined || !id.startsWith('pk_')) return order;
  const payment = await store.getPayment(id);
  return payment === undefined ? undefined : store.getOrder(payment.orderId);
}

export function fluxpaySource(deps: FluxPayConsoleDeps): PaymentSource {
  const { service, store } = deps;
  return {
    dialect: 'fluxpay',
    label: 'FluxPay orders (/api/v1/orders)',
    async list(query) {
      return rowsOf(await service.listOrders(query), row);
    },
    cursor: ulidCursor('ord'),
    async counts() {
      const c = await service.orderCounts();
      return { pending: c.PENDING, completed: c.PAID + c.COMPLETED, failed: 0, cancelled: c.CANCELLED - c.cancelledAfterPayment, refunded: c.cancelledAfterPayment };
    },
    async find(id) {
      const order = await orderOf(store, id);
      return order === undefined ? undefined : row(order);
    },
    async get(id) {
      const order = await orderOf(store, id);
      if (order === undefined) return undefined;
      const payment = order.paymentKey === null ? undefined : await store.getPayment(order.paymentKey);
      // The outbox's index of the order's events (outboxOrderIds), however old: never a scan of the outbox.
      const { events, total } = await store.orderOutbox(order.orderId, ORDER_EVENTS);
      const latest = events.at(-1);
      const shownEvents = events.map((e) => `${e.eventType} ${e.eventId} (${e.status})`).join(', ');
      const detail: PaymentDetail = {
        row: row(order),
        fields: [
          ['User id', order.userId],
          ['Service id', order.serviceId],
          ['Order name', order.orderName],
          ['Amount', money(order.amount, order.currency)],
          ['Payment key', order.paymentKey ?? '— (not paid)'],
          ['Payment', payment === undefined ? '—' : `${payment.status} · ${payment.method}${payment.card === null ? '' : ` · card …${payment.card.last4}`}${payment.failureCode === null ? '' : ` · ${payment.failureCode}`}`],
          ['Held by saga', order.sagaId ?? '—'],
          ['Credits charged', order.chargedCredits === null ? '—' : String(order.chargedCredits)],
          ['Created', iso(order.createdAt)],
          ['Paid', iso(order.paidAt) || '—'],
          ['Outbox events', events.length === 0 ? '—' : total > events.length ? `the newest ${events.length} of ${total}: ${shownEvents}` : shownEvents],
          ['Deliveries shown', latest === undefined ? '— (no event yet)' : `those of its latest event, ${latest.eventId}`],
          ...Object.entries(order.metadata ?? {}).map(([key, value]) => [`metadata.${key}`, typeof value === 'string' ? value : JSON.stringify(value)] as const),
        ],
        history: history(order, payment),
        // The delivery log keys FluxPay webhooks by event: the detail shows the latest event's deliveries.
        subject: { kind: FLUXPAY_SUBJECT_KIND, id: latest?.eventId ?? '' },
        actions: actions(order),
      };
      return detail;
    },
    async act(id, action, input: FormBody) {
      if (action !== 'cancel_order') throw new Error(`unknown action ${action}`);
      const reason = text(input, 'reason', { max: 200 }) ?? null;
      const { order, payment } = await service.cancelOrder(id, reason).catch((error: unknown) => {
        // The console's pages speak DomainError: FluxPay's refusal keeps its message.
        if (error instanceof FluxPayError) throw new DomainError(error.code === 'COMMON_404' ? 'NOT_FOUND' : 'INVALID_STATE', error.message);
        throw error;
      });
      return `Order ${order.orderId} cancelled${payment === null ? '' : `; payment ${payment.paymentKey} refunded`}.`;
    },
    // Orders change with every FluxPay event but a credit deduction or refund (usages, not orders).
    concerns: (event: DomainEvent) => isFluxPayEvent(event) && !(event.type === 'fluxpay.event' && (event.event.eventType === 'credit.deducted' || event.event.eventType === 'credit.refunded')),
  };
}

function more(total: number, shown: number): Html {
  return total > shown ? html`<p class="more">Showing ${shown} of ${total}.</p>` : html``;
}

function credits(deps: FluxPayConsoleDeps): Panel {
  return {
    id: 'fluxpay-credits',
    title: 'Credit balances',
    async render() {
      const { total, users } = await deps.store.creditBalances(PANEL_ROWS);
      if (users.length === 0) return html`<p>No credits charged yet.</p>`;
      return html`<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">User</th><th scope="col">Balance</th><th scope="col">Charged</th><th scope="col">Used</th><th scope="col">Refunded</th></tr></thead><tbody>${users.map(
        (b) =>
          html`<tr data-user="${b.userId}"><td>${b.userId}</td><td class="num" data-balance="${String(b.balance)}">${wholeNumber(b.balance)}</td><td class="num">${wholeNumber(b.charged)}</td><td class="num">${wholeNumber(b.used)}</td><td class="num">${wholeNumber(b.refunded)}</td></tr>`,
      )}</tbody></table></div>${more(total, users.length)}`;
    },
  };
}

function sagaBadge(saga: Saga): Html {
  const g = saga.status === 'COMPLETED' ? 'completed' : saga.status === 'RUNNING' ? 'pending' : saga.status === 'COMPENSATED' ? 'cancelled' : 'failed';
  return html`<span class="badge badge-${g}" data-status="${saga.status}">${saga.status}</span>`;
}

function sagas(deps: FluxPayConsoleDeps): Panel {
  return {
    id: 'fluxpay-sagas',
    title: 'Usage sagas',
    async render() {
      const { total, sagas: shown } = await deps.store.recentSagas(SAGAS_SHOWN);
      if (shown.length === 0) return html`<p>No usage sagas yet.</p>`;
      return html`<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Saga</th><th scope="col">User · usage</th><th scope="col">Order</th><th scope="col">Credits</th><th scope="col">Status</th><th scope="col">Steps</th><th scope="col">Deadline</th></tr></thead><tbody>${shown.map(
        (s) =>
          html`<tr data-saga="${s.sagaId}"><td><code>${s.sagaId}</code></td><td>${s.userId} · ${s.usageId}</td><td>${s.orderId === null ? '—' : html`<a href="/console/payments/fluxpay/${encodeURIComponent(s.orderId)}">${s.orderId}</a>`}</td><td class="num">${s.credits === null ? '—' : wholeNumber(s.credits)}</td><td>${sagaBadge(s)}${s.failureReason === null ? '' : html` <small>${s.failureReason}</small>`}</td><td><ol class="steps">${
            s.steps.length === 0 ? html`<li>none yet (plan: ${s.plan.join(', ') || '—'})</li>` : s.steps.map((step) => html`<li data-step="${step.step}">${step.step} <small>${step.kind.toLowerCase()} · ${step.status}${step.reason === null ? '' : ` · ${step.reason}`}</small></li>`)
          }</ol></td><td>${s.status === 'RUNNING' ? iso(s.deadlineAt) : '—'}</td></tr>`,
      )}</tbody></table></div>${more(total, shown.length)}`;
    },
  };
}

const OUTBOX_STATUSES = ['PENDING', 'PUBLISHED'] as const;
const OUTBOX_CURSOR = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;

function outbox(deps: FluxPayConsoleDeps): Panel {
  return {
    id: 'fluxpay-outbox',
    title: 'Outbox',
    // Seven columns: beside another panel, Status, Occurred and Published were behind a scrollbar at 1280 px (h77c).
    wide: true,
    async render(q = {}) {
      const invalid: string[] = [];
      // Upper or lower case, as GET /api/v1/outbox takes it (status=pending, not Pending); a refusal names what was given.
      const given = q.outbox_status?.trim();
      const status = offeredChoice('Outbox status', OUTBOX_STATUSES.find((s) => s.toLowerCase() === given) ?? given, OUTBOX_STATUSES, invalid);
      const givenCursor = (q.outbox_cursor ?? '').trim();
      // The API's rule for the same cursor (GET /api/v1/outbox answers 400 for another).
      const cursor = OUTBOX_CURSOR.test(givenCursor) ? givenCursor : undefined;
      if (cursor === undefined && givenCursor !== '') invalid.push(`Outbox cursor “${givenCursor.slice(0, 100)}” is invalid: it must be evt_ followed by a 26-character ULID (an Older events link’s). Showing the newest events.`);
      const stats = await deps.store.outboxStats();
      const page = await deps.service.listOutbox({ limit: OUTBOX_PAGE, cursor, status });
      const link = (params: Record<string, string | undefined>, label: string, rel?: string): Html => html`<a href="/console/fluxpay${query(params)}"${rel === undefined ? '' : html` data-page="${rel}"`}>${label}</a>`;
      const notices = invalid.map((text) => notice('error', text));
      const filters = html`<p class="filters">Show: ${link({}, 'all')} · ${link({ outbox_status: 'PENDING' }, 'pending')} · ${link({ outbox_status: 'PUBLISHED' }, 'published')}${status === undefined ? '' : html` (showing ${status.toLowerCase()})`}</p>`;
      const figures = html`${notices}<p class="figures">Pending <strong data-outbox="pending">${stats.pending}</strong> · published <strong data-outbox="published">${stats.published}</strong>${stats.oldestPendingAt === null ? '' : html` · oldest pending since ${iso(stats.oldestPendingAt)}`}</p>`;
      const first = cursor === undefined ? html`` : link({ outbox_status: status }, '← Newest events', 'newest');
      if (page.data.length === 0) return html`${figures}${filters}<p>No outbox events${cursor === undefined ? '' : ' on this page'}.</p>${cursor === undefined ? '' : html`<p>${first}</p>`}`;
      const older = page.nextCursor === null ? html`` : link({ outbox_status: status, outbox_cursor: page.nextCursor }, 'Older events →', 'older');
      const next = cursor === undefined && page.nextCursor === null ? html`` : html`<p>${first}${cursor !== undefined && page.nextCursor !== null ? ' · ' : ''}${older}</p>`;
      return html`${figures}${filters}<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">#</th><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Aggregate</th><th scope="col">Status</th><th scope="col">Occurred</th><th scope="col">Published</th></tr></thead><tbody>${page.data.map(
        (e) =>
          html`<tr data-event="${e.eventId}"><td class="num">${e.sequence}</td><td><a href="${deliveriesOf({ kind: FLUXPAY_SUBJECT_KIND, id: e.eventId })}"><code>${e.eventId}</code></a></td><td>${e.eventType}</td><td class="ref">${e.aggregate}</td><td><span class="badge badge-${e.status === 'PUBLISHED' ? 'completed' : 'pending'}" data-status="${e.status}">${e.status}</span></td><td>${iso(e.occurredAt)}</td><td>${iso(e.publishedAt) || '—'}</td></tr>`,
      )}</tbody></table></div>${next}`;
    },
  };
}

/**
 * The webhook subscriptions (`POST /api/v1/webhook-subscriptions`), each URL linked to its
 * deliveries on the Webhooks page, and FLUXPAY_WEBHOOK_URL. Bounded by FLUXPAY_MAX_SUBSCRIPTIONS.
 */
function subscriptions(deps: FluxPayConsoleDeps): Panel {
  return {
    id: 'fluxpay-subscriptions',
    title: 'Webhook subscriptions',
    // Its URLs and event lists: beside another panel, Events and Created were behind a scrollbar at 1280 px (h77c).
    wide: true,
    async render() {
      const subs = await deps.service.listSubscriptions();
      const target = (url: string): Html => html`<a href="/console/webhooks${query({ target: url })}"><code>${url}</code></a>`;
      const fallback = html`<p class="figures">FLUXPAY_WEBHOOK_URL: ${deps.defaultWebhookUrl === undefined ? raw('— (not set)') : target(deps.defaultWebhookUrl)}</p>`;
      if (subs.length === 0) return html`${fallback}<p>No webhook subscriptions.</p>`;
      return html`${fallback}<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Subscription</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Created</th></tr></thead><tbody>${subs.map(
        (sub) => html`<tr data-subscription="${sub.subscriptionId}"><td><code>${sub.subscriptionId}</code></td><td class="url">${target(sub.url)}</td><td>${sub.events.length === 0 ? 'every type' : sub.events.join(', ')}</td><td>${iso(sub.createdAt)}</td></tr>`,
      )}</tbody></table></div>`;
    },
  };
}

/**
 * The reconciliation reads every FluxPay record (on Redis in one script, which holds Redis for its
 * length: about 1.3 s for 10,000 paid orders, and past 2 s every replica takes Redis for silent and
 * answers 503). So it runs when asked (`?reconcile=1`, a link), not at each load of the page, and
 * never for the live feed's refreshes (before 2026-12-06 it ran for each: up to five times a second
 * while FluxPay was busy, a user test).
 */
function reconciliation(deps: FluxPayConsoleDeps): Panel {
  return {
    id: 'fluxpay-reconciliation',
    title: 'Reconciliation',
    live: false,
    async render(q = {}) {
      const run = (label: string): Html => html`<a href="/console/fluxpay${query({ ...q, reconcile: '1' })}" data-reconcile>${label}</a>`;
      if (q.reconcile !== '1') {
        return html`<p>Not run yet: it reads every FluxPay record (on Redis in one script, which holds Redis while it runs), so it runs when asked, not with the page’s live updates. ${run('Run the reconciliation')} (as <code>GET /api/v1/reconciliation</code>; best after a load).</p>`;
      }
      const report = await deps.service.reconcile();
      const count = report.mismatches.length;
      const list =
        count === 0
          ? html``
          : html`<ul class="mismatches">${report.mismatches.slice(0, MISMATCHES_SHOWN).map((m) => html`<li><strong>${m.kind}</strong> ${m.subject}: ${m.message}</li>`)}</ul>${more(count, Math.min(count, MISMATCHES_SHOWN))}`;
      return html`<p class="imbalance ${count === 0 ? 'ok' : 'bad'}" data-mismatches="${String(count)}">Mismatches: <strong>${count}</strong>${count === 0 ? raw(' — orders, payments, credits, sagas and the ledger agree') : raw(' — <strong>a bug</strong>: it must be 0')}</p>
<p>Orders ${report.orders.total} · payments ${report.payments.total} · duplicate charges <strong data-duplicates="${String(report.duplicateCharges)}">${report.duplicateCharges}</strong> · users with credits ${report.credits.users} (${wholeNumber(report.credits.totalBalance)} credits held) · sagas ${report.sagas.total} (${report.sagas.running} running)</p>${list}<p>Run when this page was loaded, not updated live: ${run('run it again')}.</p>`;
    },
  };
}

export function fluxpayPage(deps: FluxPayConsoleDeps): PanelPage {
  return {
    path: 'fluxpay',
    title: 'FluxPay',
    topic: 'fluxpay',
    panels: [credits(deps), sagas(deps), outbox(deps), subscriptions(deps), billingPanel(deps.billing), reconciliation(deps), waitingRoomsPanel(deps.rooms)],
    concerns: (event: DomainEvent) => isFluxPayEvent(event) || isWaitingRoomEvent(event),
  };
}
