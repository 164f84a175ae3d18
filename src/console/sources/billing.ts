import type { SubscriptionRecord, SubscriptionStore } from '../../core/subscriptions/ports.ts';
import { SUBSCRIPTION_STATUSES, type SubscriptionStatus } from '../../core/subscriptions/subscription.ts';
import { html, iso, money, wholeNumber, type Html } from '../html.ts';
import type { Panel } from '../sources.ts';

/**
 * FluxPay's billing subscriptions (issue 12) on the console's FluxPay page: how many are held in
 * each status (the store's kept counts, no scan) and the newest of them, each with its plan, its
 * period, its next charge (the period's end, or the next dunning retry) and its latest invoice,
 * linked to the FluxPay order that charged it. Read from the store's own listing, newest first,
 * like `GET /api/v1/subscriptions`.
 *
 * Live: every change of a subscription writes an outbox event (`subscription.*`), which the relay
 * tells the bus as a `fluxpay.*` event, so the panel refreshes with the rest of the page.
 */

/** Subscriptions shown at most (the newest; the rest are counted). */
const SUBSCRIPTIONS_SHOWN = 50;

const BADGE: Readonly<Record<SubscriptionStatus, string>> = { ACTIVE: 'completed', PAST_DUE: 'pending', CANCELED: 'cancelled', EXPIRED: 'cancelled' };

/** When the next charge is made: at the period's end while ACTIVE, at the next retry while PAST_DUE, never once CANCELED or EXPIRED (as the API's `nextChargeAt`). */
function nextCharge(sub: SubscriptionRecord): string {
  const at = sub.status === 'ACTIVE' ? sub.currentPeriodEnd : sub.status === 'PAST_DUE' ? sub.nextRetryAt : null;
  return at === null ? '—' : iso(at);
}

function status(sub: SubscriptionRecord): Html {
  const dunning = sub.status === 'PAST_DUE' ? html` <small>declined ${sub.dunningAttempt}×</small>` : '';
  return html`<span class="badge badge-${BADGE[sub.status]}" data-status="${sub.status}">${sub.status}</span>${dunning}`;
}

function latestInvoice(sub: SubscriptionRecord): Html | string {
  const invoice = sub.invoices.at(-1);
  if (invoice === undefined) return '—';
  return html`${invoice.kind} · ${invoice.status}${invoice.failureCode === null ? '' : html` (${invoice.failureCode})`} · ${money(invoice.amount, invoice.currency)} · <a href="/console/payments/fluxpay/${encodeURIComponent(invoice.orderId)}">${invoice.orderId}</a>`;
}

export function billingPanel(billing: SubscriptionStore): Panel {
  return {
    id: 'fluxpay-billing',
    title: 'Billing subscriptions',
    // Eight columns: beside another panel, Next charge and Latest invoice were behind a scrollbar at 1400 px.
    wide: true,
    async render() {
      const [counts, page] = await Promise.all([billing.counts(), billing.list({ limit: SUBSCRIPTIONS_SHOWN })]);
      const total = SUBSCRIPTION_STATUSES.reduce((sum, s) => sum + counts[s], 0);
      const figures = html`<p class="figures">${SUBSCRIPTION_STATUSES.map((s, i) => html`${i === 0 ? '' : ' · '}${s} <strong data-billing="${s}">${wholeNumber(counts[s])}</strong>`)}</p>`;
      if (page.data.length === 0) return html`${figures}<p>No billing subscriptions. Make one with <code>POST /api/v1/subscriptions</code>.</p>`;
      return html`${figures}<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Subscription</th><th scope="col">User</th><th scope="col">Plan</th><th scope="col">Status</th><th scope="col">Current period</th><th scope="col">Next charge</th><th scope="col">Latest invoice</th></tr></thead><tbody>${page.data.map(
        (sub) =>
          html`<tr data-billing-subscription="${sub.subscriptionId}"><td><code>${sub.subscriptionId}</code></td><td>${sub.userId}</td><td>${sub.planId}${sub.pendingPlanId === null ? '' : html` <small>→ ${sub.pendingPlanId} at renewal</small>`}</td><td>${status(sub)}</td><td>${iso(sub.currentPeriodStart)} – ${iso(sub.currentPeriodEnd)}</td><td>${nextCharge(sub)}</td><td>${latestInvoice(sub)}</td></tr>`,
      )}</tbody></table></div>${total > page.data.length ? html`<p class="more">Showing the newest ${page.data.length} of ${wholeNumber(total)}.</p>` : ''}`;
    },
  };
}
