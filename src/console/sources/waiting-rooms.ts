import type { DomainEvent } from '../../core/events.ts';
import type { RoomView, WaitingRoomService } from '../../core/waiting-room/service.ts';
import { html, iso, type Html } from '../html.ts';
import type { Panel } from '../sources.ts';

/**
 * FluxPay's virtual waiting rooms (issue 12) on the console's FluxPay page: every room with its
 * queue length, admitted so far, current rate and the services it protects. Read through the same
 * WaitingRoomService as `GET /api/v1/waiting-rooms/{roomId}` (`list()` brings each room up to now,
 * so the counts are those an API client would see at that moment).
 *
 * Live: each admission is told on the bus (`waiting_room.admitted`, published by the service as it
 * happens, a scheduler job keeping it due), and so are a new entry (`waiting_room.entered`) and a
 * room created or changed (`waiting_room.changed`), so the panel refreshes as the queue grows and drains.
 */

/** Rooms shown at most (the rest are counted). */
const ROOMS_SHOWN = 100;

export function isWaitingRoomEvent(event: DomainEvent): boolean {
  return event.type === 'waiting_room.admitted' || event.type === 'waiting_room.entered' || event.type === 'waiting_room.changed';
}

function state(room: RoomView): Html {
  const [word, badge] = !room.active ? ['inactive', 'cancelled'] : room.admitPerSecond === 0 ? ['paused', 'pending'] : ['admitting', 'completed'];
  return html`<span class="badge badge-${badge}" data-state="${word}">${word}</span>`;
}

function rate(perSecond: number): string {
  return `${perSecond}/s`;
}

export function waitingRoomsPanel(rooms: WaitingRoomService): Panel {
  return {
    id: 'fluxpay-waiting-rooms',
    title: 'Waiting rooms',
    // Beside another panel its Next admission column was cut at 1280 px (h77c).
    wide: true,
    async render() {
      const all = (await rooms.list()).sort((a, b) => (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0));
      if (all.length === 0) return html`<p>No waiting rooms. Create one with <code>PUT /api/v1/waiting-rooms/{roomId}</code> or the billing policy’s <code>waitingRooms</code>.</p>`;
      const shown = all.slice(0, ROOMS_SHOWN);
      const more = all.length > shown.length ? html`<p class="more">Showing ${shown.length} of ${all.length}.</p>` : html``;
      return html`<div class="scroll" tabindex="0"><table><thead><tr><th scope="col">Room</th><th scope="col">State</th><th scope="col">Queue</th><th scope="col">Admitted so far</th><th scope="col">Current rate</th><th scope="col">Active tokens</th><th scope="col">Protects</th><th scope="col">Next admission</th></tr></thead><tbody>${shown.map(
        (r) =>
          html`<tr data-room="${r.roomId}"><td><code>${r.roomId}</code></td><td>${state(r)}</td><td class="num" data-queue="${String(r.size)}">${r.size}</td><td class="num" data-admitted="${String(r.admitted)}">${r.admitted}</td><td class="num" data-rate="${String(r.currentRate)}">${rate(r.currentRate)}${r.currentRate === r.admitPerSecond ? '' : html` <small>(set ${rate(r.admitPerSecond)})</small>`}</td><td class="num">${r.activeTokens}${r.maxActive === null ? '' : html` <small>of ${r.maxActive}</small>`}</td><td>${r.protectedServiceIds.length === 0 ? '—' : r.protectedServiceIds.join(', ')}</td><td>${r.nextAdmissionAt === null ? '—' : iso(r.nextAdmissionAt)}</td></tr>`,
      )}</tbody></table></div>${more}`;
    },
  };
}
