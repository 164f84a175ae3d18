import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listenForNotices, REFUSED_RETRY_MS, sendNotice } from '../../src/adapters/redis/notices.ts';
import { withFakeTimeouts } from '../helpers/fake-timeouts.ts';
import { refusedInAclLog, withRedisServer } from '../helpers/redis.ts';

/**
 * The replicas' change notices (src/adapters/redis/notices.ts) on a real redis-server: one
 * subscribed connection per client for all its channels, subscribed again after a reconnect (its
 * listeners told notices may have been missed), closed with its last listener; a Redis user
 * without channels is refused both sides, and nothing fails.
 */

/** Polls `probe` every 10 ms until it is true, within 5 s. */
async function until(probe: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

/** The server's subscribed connections (`CLIENT LIST`'s `sub=` above 0). */
async function subscribers(admin: Redis): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => /\bsub=[1-9]/.test(line)).length;
}

/** Every listener a test starts, stopped after it however it ended (a failed test left its connection to the next). */
const started: Array<() => void> = [];
const listen = (...args: Parameters<typeof listenForNotices>): (() => void) => {
  const stop = listenForNotices(...args);
  started.push(stop);
  return stop;
};
afterEach(() => {
  for (const stop of started.splice(0)) stop();
});

/**
 * The subscribed connection `client`'s hub makes (it is the client's first `duplicate`), as it is
 * made, and the promise of each SUBSCRIBE the hub sends on it, by channel: its reply, on whichever
 * connection it came (ioredis sends a command again on the next connection when one drops before
 * its reply).
 */
function watchedSubscriber(client: Redis) {
  const duplicate = client.duplicate.bind(client);
  const seen: { subscriber?: Redis; subscribes: Map<string, Promise<unknown>> } = { subscribes: new Map() };
  client.duplicate = (...args: Parameters<Redis['duplicate']>) => {
    const subscriber = duplicate(...args);
    const subscribe = subscriber.subscribe.bind(subscriber) as (channel: string) => Promise<unknown>;
    (subscriber as unknown as { subscribe: (channel: string) => Promise<unknown> }).subscribe = (channel) => {
      const sent = subscribe(channel);
      seen.subscribes.set(channel, sent);
      return sent;
    };
    seen.subscriber = subscriber;
    client.duplicate = duplicate;
    return subscriber;
  };
  return seen;
}

/** A listener that records what it is told. */
function recorder() {
  const notices: string[] = [];
  const refusals: string[] = [];
  const allowed: string[] = [];
  const sendRefusals: string[] = [];
  const sendAllowed: string[] = [];
  let resubscribed = 0;
  return {
    notices,
    refusals,
    allowed,
    sendRefusals,
    sendAllowed,
    get resubscribed() {
      return resubscribed;
    },
    listener: { onNotice: (message: string) => void notices.push(message), onResubscribed: () => void resubscribed++, onRefused: (reason: string, channel: string) => void refusals.push(`${channel} ${reason}`), onAllowed: (channel: string) => void allowed.push(channel),
      onSendRefused: (reason: string, channel: string) => void sendRefusals.push(`${channel} ${reason}`),
      onSendAllowed: (channel: string) => void sendAllowed.push(channel),
    },
  };
}

/**
 * On `client`: `<prefix>kept` listened on and subscribed; then `<prefix>gone` listened on while the
 * connection is ready (its SUBSCRIBE sent at once) and the connection dropped in the same turn,
 * before any reply can be read (ioredis keeps the SUBSCRIBE to send again on the next connection),
 * and gone's listener stopped while the connection is made again, when no UNSUBSCRIBE can go.
 * Answers both recorders, the subscribed connection and gone's SUBSCRIBE (its reply, on whichever
 * connection it comes).
 */
async function goneWhileReconnecting(client: Redis, prefix: string) {
  const seen = watchedSubscriber(client);
  const kept = recorder();
  listen(client, `${prefix}kept`, kept.listener);
  await until(() => kept.resubscribed === 1, 'the first subscription');
  const subscriber = seen.subscriber as Redis;
  const gone = recorder();
  const stopGone = listen(client, `${prefix}gone`, gone.listener);
  expect([...seen.subscribes.keys()]).toEqual([`${prefix}kept`, `${prefix}gone`]);
  const closed = once(subscriber, 'close');
  subscriber.stream.destroy();
  await closed;
  // The connection is being made again (ioredis waits before it reconnects).
  expect(subscriber.status).toBe('reconnecting');
  stopGone();
  return { kept, gone, subscriber, goneSubscribe: seen.subscribes.get(`${prefix}gone`) as Promise<unknown> };
}

withRedisServer('Redis change notices', (server) => {
  /** A client to listen and send on, another to look at the server with, and a key prefix of the test's own. */
  const connected = () => {
    const redis = server();
    return { client: redis.connect(), admin: redis.connect(), prefix: redis.newPrefix() };
  };
  describe('listenForNotices and sendNotice', () => {
    it('two channels share one subscribed connection; each listener gets its own channel’s notices, in order; the connection closes with the last listener', async () => {
      const { client, admin, prefix } = connected();
      const [one, two, three] = [recorder(), recorder(), recorder()];
      const stopOne = listen(client, `${prefix}a`, one.listener);
      const stopTwo = listen(client, `${prefix}a`, two.listener);
      const stopThree = listen(client, `${prefix}b`, three.listener);
      await until(() => one.resubscribed === 1 && two.resubscribed === 1 && three.resubscribed === 1, 'the first subscription');
      expect(await subscribers(admin)).toBe(1);
      expect(await admin.pubsub('NUMSUB', `${prefix}a`, `${prefix}b`)).toEqual([`${prefix}a`, 1, `${prefix}b`, 1]);

      for (const message of ['ns-1', 'ns-2']) await sendNotice(client, `${prefix}a`, message);
      await sendNotice(client, `${prefix}b`, 'ns-3');
      await until(() => one.notices.length === 2 && three.notices.length === 1, 'the notices');
      expect([one.notices, two.notices, three.notices]).toEqual([['ns-1', 'ns-2'], ['ns-1', 'ns-2'], ['ns-3']]);

      // A listener gone: the others of its channel still hear; the last of a channel unsubscribes it.
      stopOne();
      await sendNotice(client, `${prefix}a`, 'ns-4');
      await until(() => two.notices.length === 3, 'the notice after one listener went');
      expect(one.notices).toEqual(['ns-1', 'ns-2']);
      stopTwo();
      await until(async () => ((await admin.pubsub('NUMSUB', `${prefix}a`)) as unknown[])[1] === 0, 'channel a unsubscribed');
      expect(await subscribers(admin)).toBe(1);
      stopThree();
      await until(async () => (await subscribers(admin)) === 0, 'the subscribed connection to close');
      // Stopping twice does nothing more.
      stopThree();
    });

    it('a notice sent on a client that listens on its channel resolves once it has come back (so every other subscriber has it too), 20 times in a row; a notice on a channel it does not listen on resolves once Redis took it', async () => {
      const redis = server();
      const client = redis.connect();
      const prefix = redis.newPrefix();
      const listening = recorder();
      const stop = listen(client, `${prefix}echo`, listening.listener);
      await until(() => listening.resubscribed === 1, 'the first subscription');
      const heardWhenSent: number[] = [];
      for (let i = 0; i < 20; i++) {
        expect(await sendNotice(client, `${prefix}echo`, `ns-${i}`)).toBe('echoed');
        heardWhenSent.push(listening.notices.length);
      }
      expect(heardWhenSent).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await expect(sendNotice(client, `${prefix}nobody`, 'unheard')).resolves.toBe('sent');
      // Sent at once with the same message (one namespace's changes made together): each copy releases one sender, none waits the timeout (rev76e: 4 of 5 did).
      expect(await Promise.all(Array.from({ length: 5 }, () => sendNotice(client, `${prefix}echo`, 'same')))).toEqual(['echoed', 'echoed', 'echoed', 'echoed', 'echoed']);
      await until(() => listening.notices.length === 25, 'the five copies');
      stop();
    });

    it('a channel added to a connection already subscribed is subscribed at once', async () => {
      const redis = server();
      const client = redis.connect();
      const prefix = redis.newPrefix();
      const [first, later] = [recorder(), recorder()];
      const stops = [listen(client, `${prefix}first`, first.listener)];
      await until(() => first.resubscribed === 1, 'the first subscription');
      stops.push(listen(client, `${prefix}later`, later.listener));
      await until(() => later.resubscribed === 1, 'the later channel subscribed');
      await sendNotice(client, `${prefix}later`, 'told');
      await until(() => later.notices.length === 1, 'the notice on the later channel');
      expect([first.notices, later.notices, first.resubscribed]).toEqual([[], ['told'], 1]);
      for (const stop of stops) stop();
    });

    it('a Redis user allowed some of the channels only: those it may subscribe are subscribed and heard; the others are refused alone (rev76f: one SUBSCRIBE for every channel was refused whole)', async () => {
      const redis = server();
      const { prefix } = connected();
      const user = `somechannels${Date.now()}`;
      await redis.client.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', 'resetchannels', `&${prefix}allowed*`, '+@all');
      const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
      const [allowed, forbidden] = [recorder(), recorder()];
      // The forbidden channel first, as the app listens to the fault rules' before the namespace resets'.
      listen(client, `${prefix}forbidden`, forbidden.listener);
      listen(client, `${prefix}allowed`, allowed.listener);
      await until(() => allowed.resubscribed === 1, 'the allowed channel subscribed');
      expect(await sendNotice(client, `${prefix}allowed`, 'reset ci-1')).toBe('echoed');
      expect(await sendNotice(client, `${prefix}forbidden`, 'rule changed')).toBe('refused');
      expect([allowed.notices, forbidden.notices, forbidden.resubscribed]).toEqual([['reset ci-1'], [], 0]);
      // Only the forbidden channel's listener is told why, in Redis' words.
      expect([allowed.refusals, forbidden.refusals.map((told) => told.split(' ').slice(0, 2).join(' '))]).toEqual([[], [`${prefix}forbidden NOPERM`]]);
    });

    it('a channel whose last listener left while its SUBSCRIBE waited on a dropped connection is unsubscribed once ioredis has sent it again and Redis acknowledged it (rev76e: it stayed subscribed for nothing)', async () => {
      const { client, admin, prefix } = connected();
      const { kept, gone, subscriber, goneSubscribe } = await goneWhileReconnecting(client, prefix);
      // Sent again on the new connection (by ioredis, before its 'ready' event, on which the hub
      // subscribes the kept channel), and acknowledged there: 1 channel subscribed. The hub's own
      // handler of that reply ran first (it was attached when the SUBSCRIBE was sent), and sent its
      // UNSUBSCRIBE then.
      await expect(goneSubscribe).resolves.toBe(1);
      await until(() => kept.resubscribed === 2, 'the kept channel subscribed again');
      // A round trip on the subscribed connection itself, after both: Redis has handled what was sent on it before.
      await subscriber.ping();
      expect(await admin.pubsub('CHANNELS', `${prefix}*`)).toEqual([`${prefix}kept`]);
      expect([gone.resubscribed, gone.notices]).toEqual([0, []]);
    });

    it('a subscribed connection killed is made again and subscribed again; its listeners are told notices may have been missed, and hear the next ones', async () => {
      const { client, admin, prefix } = connected();
      const listening = recorder();
      const stop = listen(client, `${prefix}ch`, listening.listener);
      await until(() => listening.resubscribed === 1, 'the first subscription');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await until(() => listening.resubscribed === 2, 'the subscription made again');
      await sendNotice(client, `${prefix}ch`, 'after');
      await until(() => listening.notices.length === 1, 'the notice after the reconnect');
      expect(listening.notices).toEqual(['after']);
      stop();
    });

    it('a Redis user without channels (Redis 7’s default, resetchannels): the subscription and the notice are refused, and nothing fails or throws', async () => {
      const redis = server();
      const user = `nochannels${Date.now()}`;
      await redis.client.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', 'resetchannels', '+@all');
      const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
      const admin = redis.connect();
      const prefix = redis.newPrefix();
      const listening = recorder();
      const stop = listen(client, `${prefix}ch`, listening.listener);
      await until(() => listening.refusals.length === 1, 'the refusal told');
      await expect(sendNotice(client, `${prefix}ch`, 'refused')).resolves.toBe('refused');
      expect([listening.resubscribed, listening.notices, await subscribers(admin)]).toEqual([0, [], 0]);
      // Told why once, in Redis' words (an operator's only sign that the notices are off); the
      // refused notice, sent once the subscription's refusal is known, not told as well (that
      // refusal's line says how to mend both; one sent before it is back is told on its own).
      expect(listening.refusals).toEqual([expect.stringMatching(new RegExp(`^${prefix}ch NOPERM .*channel`))]);
      expect(listening.sendRefusals).toEqual([]);
      // The client itself still serves.
      expect(await client.ping()).toBe('PONG');
      stop();
    });

    it('a refused subscription is told once until the channel is subscribed: not again at each reconnect; once the ACL allows the channel it is subscribed at the next reconnect, and a later refusal is told again', async () => {
      const redis = server();
      const { admin, prefix } = connected();
      const user = `laterchannels${Date.now()}`;
      await admin.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', 'resetchannels', '+@all');
      const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
      const listening = recorder();
      listen(client, `${prefix}ch`, listening.listener);
      await until(() => listening.refusals.length === 1, 'the first refusal told');
      // Its connection made again twice: each reconnect subscribes again and is refused again
      // (Redis' ACL LOG counts the refusals of the channel: 3), and nothing more is told.
      for (let refusals = 2; refusals <= 3; refusals++) {
        await admin.call('CLIENT', 'KILL', 'USER', user, 'SKIPME', 'yes');
        await until(async () => (await refusedInAclLog(admin, `${prefix}ch`)) === refusals, `refusal ${refusals} in the ACL log`);
      }
      expect([listening.refusals.length, listening.resubscribed]).toEqual([1, 0]);
      // Allowed now: the next connection subscribes it, and the notices flow.
      await admin.acl('SETUSER', user, `&${prefix}*`);
      await admin.call('CLIENT', 'KILL', 'USER', user, 'SKIPME', 'yes');
      await until(() => listening.resubscribed === 1, 'the channel subscribed once allowed');
      expect(listening.allowed).toEqual([`${prefix}ch`]);
      expect(await sendNotice(client, `${prefix}ch`, 'allowed now')).toBe('echoed');
      // Refused again: told again.
      await admin.acl('SETUSER', user, 'resetchannels');
      await admin.call('CLIENT', 'KILL', 'USER', user, 'SKIPME', 'yes');
      await until(() => listening.refusals.length === 2, 'the second refusal told');
      expect([listening.notices, listening.resubscribed]).toEqual([['allowed now'], 1]);
    });

    it('a replica whose user loses @pubsub while subscribed (Redis keeps its subscription): its refused notice is told once until one is taken, then that it is taken (rev77b: nothing told until the next reconnect)', async () => {
      const redis = server();
      const { admin, prefix } = connected();
      const user = `losespubsub${Date.now()}`;
      await admin.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', `&${prefix}*`, '+@all');
      const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
      const listening = recorder();
      listen(client, `${prefix}ch`, listening.listener);
      await until(() => listening.resubscribed === 1, 'the subscription');
      await admin.acl('SETUSER', user, '-@pubsub');
      // Still subscribed (Redis drops no subscriber for a command taken away), and every PUBLISH refused.
      expect(await subscribers(admin)).toBe(1);
      expect([await sendNotice(client, `${prefix}ch`, 'first'), await sendNotice(client, `${prefix}ch`, 'second')]).toEqual(['refused', 'refused']);
      expect(listening.sendRefusals).toEqual([expect.stringMatching(new RegExp(`^${prefix}ch NOPERM .*publish`))]);
      expect([listening.refusals, listening.sendAllowed, listening.notices]).toEqual([[], [], []]);
      // Given back: the next notice is taken and comes back, and its listeners are told so once.
      await admin.acl('SETUSER', user, '+@pubsub');
      expect([await sendNotice(client, `${prefix}ch`, 'third'), await sendNotice(client, `${prefix}ch`, 'fourth')]).toEqual(['echoed', 'echoed']);
      expect([listening.sendRefusals.length, listening.sendAllowed, listening.notices]).toEqual([1, [`${prefix}ch`], ['third', 'fourth']]);
      // Taken away again: told again.
      await admin.acl('SETUSER', user, '-@pubsub');
      expect(await sendNotice(client, `${prefix}ch`, 'fifth')).toBe('refused');
      expect(listening.sendRefusals.length).toBe(2);
    });

    it('a channel refused is subscribed again every REFUSED_RETRY_MS: an ACL that allows it since takes effect without a reconnect (rev77a: notices stayed off until one), and its listeners are told', async () => {
      const redis = server();
      const { admin, prefix } = connected();
      const user = `retried${Date.now()}`;
      await admin.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', 'resetchannels', '+@all');
      // The retry's timer is a fake one: it fires when the test says (the connections make none meanwhile).
      await withFakeTimeouts(async () => {
        const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
        const listening = recorder();
        listen(client, `${prefix}ch`, listening.listener);
        await until(() => listening.refusals.length === 1, 'the refusal told');
        // Tried again, still refused: counted by Redis, not told again.
        vi.advanceTimersByTime(REFUSED_RETRY_MS);
        await until(async () => (await refusedInAclLog(admin, `${prefix}ch`)) === 2, 'the second try refused');
        await admin.acl('SETUSER', user, `&${prefix}*`);
        vi.advanceTimersByTime(REFUSED_RETRY_MS - 1);
        await sleep(100);
        expect([listening.resubscribed, listening.allowed]).toEqual([0, []]);
        vi.advanceTimersByTime(1);
        await until(() => listening.resubscribed === 1, 'the channel subscribed once allowed, with no reconnect');
        expect([listening.refusals.length, listening.allowed]).toEqual([1, [`${prefix}ch`]]);
        expect(await sendNotice(client, `${prefix}ch`, 'allowed now')).toBe('echoed');
        await until(() => listening.notices.length === 1, 'the notice');
        // Subscribed: no try is due any more.
        expect(vi.getTimerCount()).toBe(0);
      });
    });

    it('a channel listened on again right after its connection closed with its last listener is told it is subscribed once, by the new connection (rev77b: the closed one’s late reply told it too, before it was subscribed)', async () => {
      const { client, admin, prefix } = connected();
      const first = recorder();
      const stopFirst = listen(client, `${prefix}b`, first.listener);
      await until(() => first.resubscribed === 1, 'the first subscription');
      // In one turn: a channel's SUBSCRIBE sent, then every listener gone (the connection closes,
      // its SUBSCRIBE still answered), and the channel listened on again (a new connection).
      const old = recorder();
      const stopOld = listen(client, `${prefix}a`, old.listener);
      stopFirst();
      stopOld();
      const again = recorder();
      listen(client, `${prefix}a`, again.listener);
      await until(() => again.resubscribed === 1, 'the channel subscribed on the new connection');
      await until(async () => (await subscribers(admin)) === 1, 'the old connection gone');
      // A round trip on a client after both: the closed connection's reply had come long before.
      await admin.ping();
      await sleep(100);
      expect([again.resubscribed, old.resubscribed]).toEqual([1, 0]);
      expect(await admin.pubsub('CHANNELS', `${prefix}*`)).toEqual([`${prefix}a`]);
    });

    it('a refusal that comes back once the channel’s last listener has left is not kept: the channel listened on again is told its own refusal (rev77a: it never was)', async () => {
      const redis = server();
      const { admin, prefix } = connected();
      const user = `leftrefused${Date.now()}`;
      await admin.acl('SETUSER', user, 'on', `>${user}-pass`, '~*', 'resetchannels', `&${prefix}kept`, '+@all');
      const client = redis.connect(redis.url.replace('redis://', `redis://${user}:${user}-pass@`));
      // ioredis sends gone's SUBSCRIBE again on the next connection, where Redis refuses it, after its listener has left.
      const { kept, gone, goneSubscribe } = await goneWhileReconnecting(client, prefix);
      await expect(goneSubscribe).rejects.toThrow(/^NOPERM/);
      await until(() => kept.resubscribed === 2, 'the kept channel subscribed again');
      expect(gone.refusals).toEqual([]);
      // Listened on again: refused, and told.
      const again = recorder();
      listen(client, `${prefix}gone`, again.listener);
      await until(() => again.refusals.length === 1, 'the refusal of the channel listened on again');
      expect(again.refusals).toEqual([expect.stringMatching(new RegExp(`^${prefix}gone NOPERM`))]);
    });
  });
});
