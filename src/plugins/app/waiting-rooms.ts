import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram } from 'prom-client';
import { WaitingRoomService, type RoomView } from '../../core/waiting-room/service.ts';
import { oncePerScrape } from './metrics.ts';

/**
 * FluxPay's virtual waiting rooms (issue 12), built once per app from the core and the
 * WaitingRoomStore port: the service (admissions published on the event bus as
 * `waiting_room.admitted`), the rooms the billing policy declares (created at start), the metrics
 * (queue length per room, admissions, wait time) and the TTL sweep of ended tickets.
 */

declare module 'fastify' {
  interface FastifyInstance {
    waitingRooms: WaitingRoomService;
  }
}

/** Waits from seconds to an hour: a sale's queue is drained over minutes. */
const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export default fp(
  async (app) => {
    const { config, clock, ids, bus, stores, scheduler } = app.core;
    const registers = [app.metrics.registry];
    // A scrape first brings every room up to now, once for all three metrics: the admissions due
    // since the last request or tick are published (counted, their waits observed) before any of
    // the three is read, so the queue lengths and the admissions of one scrape agree.
    const bringUpToDate = oncePerScrape((): Promise<RoomView[]> => service.list());
    const admissions = new Counter({
      name: 'fluxpay_waiting_room_admissions_total',
      help: 'Users admitted from a FluxPay waiting room, by room (its rate is the admissions per second).',
      labelNames: ['room'],
      registers,
      async collect() {
        await app.metrics.fromStore(bringUpToDate, () => undefined);
      },
    });
    const waitTime = new Histogram({
      name: 'fluxpay_waiting_room_wait_seconds',
      help: 'Time from entering a FluxPay waiting room to being admitted.',
      labelNames: ['room'],
      buckets: WAIT_BUCKETS,
      registers,
      async collect() {
        await app.metrics.fromStore(bringUpToDate, () => undefined);
      },
    });
    // The rooms the billing policy declares are known from the start: their series are there at 0
    // (a room made through the API is counted from its first admission).
    for (const { roomId } of config.fluxpay.policy.waitingRooms.values()) {
      admissions.inc({ room: roomId }, 0);
      waitTime.zero({ room: roomId });
    }
    /** Declared rooms that could not be made again (the store full of rooms), warned of once. */
    const unmade = new Set<string>();
    const service = new WaitingRoomService({
      store: stores.waitingRooms,
      scheduler,
      clock,
      ids,
      publish: (event) => bus.publish(event),
      services: config.fluxpay.policy.services,
      timeScale: config.timeScale,
      declared: new Map([...config.fluxpay.policy.waitingRooms.values()].map(({ roomId, ...settings }) => [roomId, settings])),
      onRestored: (roomId, outcome) => {
        // A store full of rooms refuses each try (once a second per call that finds it missing): said once until it is made.
        if (outcome === 'full' && unmade.has(roomId)) return;
        if (outcome === 'full') unmade.add(roomId);
        else unmade.delete(roomId);
        app.log.warn(
          { room: roomId },
          outcome === 'created'
            ? `waiting room ${roomId}, declared in the billing policy, was not in the store (Redis lost its data?): made again from the policy, with no one waiting`
            : `waiting room ${roomId}, declared in the billing policy, is not in the store (Redis lost its data?) and cannot be made again: FLUXPAY_MAX_WAITING_ROOMS rooms exist; orders of its services are not guarded by it`,
        );
      },
    });
    bus.subscribe((event) => {
      if (event.type !== 'waiting_room.admitted') return;
      admissions.inc({ room: event.roomId });
      waitTime.observe({ room: event.roomId }, Math.max(0, event.admittedAt - event.enteredAt) / 1000);
    });
    new Gauge({
      name: 'fluxpay_waiting_room_queue_length',
      help: 'Users waiting in a FluxPay waiting room, by room.',
      labelNames: ['room'],
      registers,
      async collect() {
        await app.metrics.fromStore(bringUpToDate, (rooms) => {
          this.reset();
          for (const room of rooms) this.set({ room: room.roomId }, room.size);
        });
      },
    });
    app.decorate('waitingRooms', service);

    // Rooms the billing policy declares exist from the start (a PUT may change them later, and a
    // restart keeps what it changed unless the policy's declaration of the room changed meanwhile).
    for (const room of config.fluxpay.policy.waitingRooms.values()) {
      const { roomId, ...settings } = room;
      await service.declare(roomId, settings);
    }
    // Every room brought up to date first (its admitted tickets whose tokens expired end then, and
    // its admissions due are published): a ticket ends only when its room is brought up to date, so
    // the tickets of a room nobody called (no request, no scrape of /metrics) never ended, were never
    // swept, and held FLUXPAY_MAX_WAITING_TICKETS against every other room (a user test, 2026-12-07).
    // The tickets' sweep runs whether the rooms could be brought up to date or not (then it drops
    // what ended by the last call), and the failure is reported after it.
    app.core.onSweep(async (now) => {
      try {
        await service.list();
      } finally {
        await stores.waitingRooms.sweep(now);
      }
    });
    app.core.onSweep((now) => stores.rateLimits.sweep(now));
  },
  { name: 'paysim-waiting-rooms', dependencies: ['paysim-core', 'paysim-metrics'] },
);
