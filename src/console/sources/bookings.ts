import type { Booking, BookingStatus } from '../../core/bookings/booking.ts';
import type { Performance } from '../../core/bookings/performances.ts';
import type { BookingService } from '../../core/bookings/service.ts';
import { isBookingEvent, type DomainEvent } from '../../core/events.ts';
import type { LedgerStore, SeatStore } from '../../core/ports.ts';
import { html, iso, money, raw, wholeNumber, type Html } from '../html.ts';
import { absentIfNotFound, groupCounts, rowsOf, ulidCursor, type HistoryEntry, type PaymentRow, type PaymentSource, type Panel, type PanelPage, type StatusGroup } from '../sources.ts';

/**
 * Bookings (issue 4) in the console: their payments in the payments view, and the bookings page
 * (a seat map per performance, the recent bookings, the events inbox, ledger balances with the
 * imbalance figure). Bookings are read through BookingService (`listRecent`: every booking,
 * newest first, whoever booked it; a lapsed hold shows as expired, as `get` does).
 */

/** Bookings the inbox panel reads the events of (newest first). */
const INBOX_BOOKINGS = 200;
const RECENT_SHOWN = 50;

/** The delivery log's subject kind of a booking (src/dialects/bookings/webhook-payload.ts). */
export const BOOKING_SUBJECT = 'booking';

const GROUPS: Readonly<Record<BookingStatus, StatusGroup>> = { pending: 'pending', confirmed: 'completed', failed: 'failed', expired: 'cancelled', cancelled: 'cancelled' };

export interface BookingDeps {
  service: BookingService;
  seats: SeatStore;
  ledger: LedgerStore;
  performances: readonly Performance[];
  now: () => number;
}

function row(booking: Booking): PaymentRow {
  return {
    dialect: 'booking',
    id: booking.id,
    reference: `${booking.userId} · ${booking.performanceId} × ${booking.quantity}`,
    amount: booking.totalAmount,
    currency: booking.currency,
    status: `${booking.status} / ${booking.paymentIntent.status}`,
    group: GROUPS[booking.status],
    createdAt: booking.createdAt,
    updatedAt: booking.settledAt ?? booking.paymentIntent.pgMockData?.processedAt ?? booking.createdAt,
  };
}

function history(booking: Booking): HistoryEntry[] {
  const entries: HistoryEntry[] = [{ at: booking.createdAt, status: 'pending', event: 'booking.created', note: `seats ${booking.seatIds.join(', ')} held until ${iso(booking.expiresAt)}` }];
  const pg = booking.paymentIntent.pgMockData;
  if (pg !== null) entries.push({ at: pg.processedAt, status: booking.paymentIntent.status, event: 'booking.payment_decided', note: pg.isSuccess ? 'gateway approved' : `gateway declined: ${pg.failureCode ?? ''}` });
  // When it left pending, as its status event says (before 2026-12-05 a cancel showed the booking's creation time, and a
  // confirm or a failure the gateway's decision, not its inbox event's processing: a user test).
  const settledAt = booking.settledAt ?? pg?.processedAt ?? booking.createdAt;
  if (booking.status === 'expired') entries.push({ at: booking.settledAt ?? booking.expiresAt, status: 'expired', event: 'booking.expired', note: `the seat hold lapsed at ${iso(booking.expiresAt)}` });
  else if (booking.status !== 'pending') entries.push({ at: settledAt, status: booking.status, event: `booking.${booking.status}`, note: pg === null ? '' : 'after its inbox event was processed' });
  return entries;
}

async function recentBookings(deps: BookingDeps, limit: number): Promise<Booking[]> {
  return (await deps.service.listRecent({ limit })).data;
}

export function bookingSource(deps: BookingDeps): PaymentSource {
  return {
    dialect: 'booking',
    label: 'Bookings (/bookings, /api/v1/payments)',
    async list(query) {
      return rowsOf(await deps.service.listRecent(query), row);
    },
    cursor: ulidCursor('bk'),
    async counts() {
      return groupCounts((await deps.service.counts()).bookings, GROUPS);
    },
    async find(id) {
      const booking = await deps.service.get(id).catch(absentIfNotFound);
      return booking === undefined ? undefined : row(booking);
    },
    async get(id) {
      const booking = await deps.service.get(id).catch(absentIfNotFound);
      if (booking === undefined) return undefined;
      return {
        row: row(booking),
        fields: [
          ['User', booking.userId],
          ['Performance', booking.performanceId],
          ['Seats', booking.seatIds.join(', ')],
          ['Amount', money(booking.totalAmount, booking.currency)],
          ['Payment method', booking.paymentMethod],
          ['Payment', booking.paymentIntent.status],
          ['Hold until', iso(booking.expiresAt)],
          ['Webhook URL', booking.webhookUrl ?? '—'],
        ],
        history: history(booking),
        subject: { kind: BOOKING_SUBJECT, id: booking.id },
        actions: [],
      };
    },
    concerns: (event: DomainEvent) => event.type.startsWith('booking.'),
  };
}

function timeLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function seatMap(deps: BookingDeps, performance: Performance): Panel {
  return {
    id: `seats-${performance.id}`,
    title: `Seats: ${performance.title} (${performance.id})`,
    async render() {
      const seats = (await deps.seats.seatsOf(performance.id)) ?? [];
      const now = deps.now();
      const counts = { available: 0, locked: 0, reserved: 0 };
      for (const seat of seats) counts[seat.status]++;
      const rows = new Map<string, typeof seats>();
      for (const seat of seats) rows.set(seat.row, [...(rows.get(seat.row) ?? []), seat]);
      const cells = [...rows].map(
        ([label, rowSeats]) => html`<tr><th scope="row">${label}</th>${rowSeats.map((seat) => {
          const word = seat.status === 'locked' ? 'held' : seat.status;
          const left = seat.lockedUntil === null ? '' : timeLeft(seat.lockedUntil - now);
          const who = `${seat.seatId} ${word}${seat.bookingId === null ? '' : ` by ${seat.bookingId}`}`;
          const name = left === '' ? who : `${who}, ${left} left`;
          // The time left counts down in the title and the name a screen reader reads too (console.js, `data-left`), not only on screen.
          const spoken = left === '' ? who : html`${who}, <span data-left>${left}</span> left`;
          return html`<td class="seat seat-${word}" data-seat="${seat.seatId}" data-status="${word}" title="${name}"><span class="visually-hidden">${spoken}</span><span aria-hidden="true">${seat.status === 'locked' ? html`<span data-until="${String(seat.lockedUntil)}">${left}</span>` : seat.number}</span></td>`;
        })}</tr>`,
      );
      return html`<p class="legend"><span class="seat-key seat-available" aria-hidden="true"></span> available ${counts.available}
        <span class="seat-key seat-held" aria-hidden="true"></span> held ${counts.locked}
        <span class="seat-key seat-reserved" aria-hidden="true"></span> reserved ${counts.reserved}
        · ${money(performance.priceMinor, performance.currency)} a seat · starts ${performance.startsAt}</p>
        <div class="scroll" tabindex="0"><table class="seatmap" data-performance="${performance.id}"><caption class="visually-hidden">Seat map of ${performance.title}: a held seat shows the minutes and seconds its hold has left</caption>${cells}</table></div>`;
    },
  };
}

function inbox(deps: BookingDeps): Panel {
  return {
    id: 'inbox',
    title: 'Events inbox',
    async render() {
      const events = [];
      for (const booking of await recentBookings(deps, INBOX_BOOKINGS)) events.push(...(await deps.service.events(booking.id)));
      events.sort((a, b) => b.createdAt - a.createdAt);
      if (events.length === 0) return html`<p>No inbox events yet.</p>`;
      return html`<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Booking</th><th scope="col">Amount</th><th scope="col">Created</th><th scope="col">Processed</th><th scope="col">Lag</th></tr></thead><tbody>${events.slice(0, 100).map(
        (e) => html`<tr><td><code>${e.eventId}</code></td><td>${e.type}</td><td><a href="/console/payments/booking/${e.bookingId}">${e.bookingId}</a></td><td class="num">${money(e.details.amount, e.details.currency)}</td><td>${iso(e.createdAt)}</td><td>${e.processedAt === null ? html`<span class="badge badge-pending">unprocessed</span>` : iso(e.processedAt)}</td><td>${e.processedAt === null ? '' : `${e.processedAt - e.createdAt} ms`}</td></tr>`,
      )}</tbody></table></div>`;
    },
  };
}

function recent(deps: BookingDeps): Panel {
  return {
    id: 'recent-bookings',
    title: 'Recent bookings',
    async render() {
      const bookings = await recentBookings(deps, RECENT_SHOWN);
      if (bookings.length === 0) return html`<p>No bookings yet.</p>`;
      return html`<div class="scroll" tabindex="0"><table class="bookings"><caption class="visually-hidden">The newest ${RECENT_SHOWN} bookings, newest first</caption><thead><tr><th scope="col">Booking</th><th scope="col">User</th><th scope="col">Performance</th><th scope="col">Seats</th><th scope="col">Amount</th><th scope="col">Status</th><th scope="col">Payment</th><th scope="col">Created</th></tr></thead><tbody>${bookings.map(
        (b) =>
          html`<tr data-booking="${b.id}"><td><a href="/console/payments/booking/${encodeURIComponent(b.id)}"><code>${b.id}</code></a></td><td>${b.userId}</td><td>${b.performanceId}</td><td>${b.seatIds.join(', ')}</td><td class="num">${money(b.totalAmount, b.currency)}</td><td><span class="badge badge-${GROUPS[b.status]}" data-status="${b.status}">${b.status}</span></td><td>${b.paymentIntent.status}</td><td>${iso(b.createdAt)}</td></tr>`,
      )}</tbody></table></div><p class="hint">The newest ${RECENT_SHOWN}, whoever booked them.</p>`;
    },
  };
}

function ledger(deps: BookingDeps): Panel {
  return {
    id: 'ledger',
    title: 'Ledger balances',
    async render() {
      const balances = await deps.ledger.balances();
      const imbalance = await deps.ledger.imbalance();
      const table: Html =
        balances.length === 0
          ? html`<p>No ledger entries yet.</p>`
          : html`<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Account</th><th scope="col">Currency</th><th scope="col">Debits</th><th scope="col">Credits</th><th scope="col">Balance</th></tr></thead><tbody>${balances.map(
              (b) => html`<tr><td>${b.account}</td><td>${b.currency}</td><td class="num">${money(b.debits, b.currency)}</td><td class="num">${money(b.credits, b.currency)}</td><td class="num">${money(b.balance, b.currency)}</td></tr>`,
            )}</tbody></table></div>`;
      return html`${table}<p class="imbalance ${imbalance === 0 ? 'ok' : 'bad'}" data-imbalance="${String(imbalance)}">Imbalance (total debits − total credits): <strong>${wholeNumber(imbalance)}</strong>${imbalance === 0 ? raw(' — balanced') : raw(' — <strong>a bug</strong>: it must be 0')}</p>`;
    },
  };
}

export function bookingsPage(deps: BookingDeps): PanelPage {
  return {
    path: 'bookings',
    title: 'Bookings',
    topic: 'bookings',
    panels: [...deps.performances.map((p) => seatMap(deps, p)), recent(deps), inbox(deps), ledger(deps)],
    concerns: (event: DomainEvent) => isBookingEvent(event) || event.type === 'booking.payment_decided' || event.type === 'booking.event_processed',
  };
}
