// Drain scenario, driven by drain_test.go through stdin and stdout (see
// steps.mjs).
//
// URL is the test's load balancer. The users of TOKENS (a JSON list) and one
// sender (SENDER_TOKEN) connect through it and join chat "drain"; every
// socket re-joins on each reconnect with the last eventId it saw, and the
// `missed` events are collected. The sender sends a baseline message every
// client must see live, then the script prints @READY and the sender sends a
// message every 20 ms (with acks) until the line STOP arrives on stdin and
// every socket is connected and joined again. Then it sends a fence
// message every client must see, writes what it observed to SUMMARY (JSON),
// prints @SUMMARY, and waits for EXIT on stdin before closing the
// sockets. The Go test makes the assertions; this script fails only when the
// setup before READY does not work.
import { io } from 'socket.io-client';
import { writeFileSync } from 'node:fs';
import { URL, env, main, log, sleep, ack, assertOK } from './lib.mjs';
import { mark, command, until } from './steps.mjs';

const CHAT = 'drain';
const tokens = JSON.parse(env('TOKENS'));
const senderToken = env('SENDER_TOKEN');
const summaryPath = env('SUMMARY');

/**
 * A socket that joins CHAT on every connect (with lastEventId after the
 * first) and records what happens to it. Times are Date.now() (ms since the
 * epoch), comparable with the Go test's clock.
 */
function client(name, token) {
  const c = {
    name,
    live: [], // eventIds of new_message received live, in order
    missed: [], // eventIds of new_message from join_chat's missed lists
    connects: [],
    disconnects: [],
    connectErrors: [],
    joins: [],
    joinErrors: [],
    lastEventId: null,
    joined: false,
  };
  const s = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  c.socket = s;
  s.on('new_message', (m) => {
    if (m.chatId !== CHAT) return;
    c.live.push(m.eventId);
    c.lastEventId = m.eventId;
  });
  s.on('disconnect', (reason, details) => {
    c.joined = false;
    const ctx = details && details.context;
    c.disconnects.push({
      t: Date.now(),
      reason,
      description: details && details.description,
      code: ctx && ctx.code,
      closeReason: ctx && ctx.reason !== undefined ? String(ctx.reason) : undefined,
    });
  });
  s.on('connect_error', (err) => {
    c.connectErrors.push({ t: Date.now(), message: err.message, data: err.data });
  });
  s.on('connect', () => {
    c.connects.push(Date.now());
    join(c);
  });
  return c;
}

async function join(c) {
  const payload = { chatId: CHAT };
  if (c.lastEventId !== null) payload.lastEventId = c.lastEventId;
  const t = Date.now();
  const liveBefore = c.live.length;
  let res;
  try {
    res = await ack(c.socket, 'join_chat', payload, 5000);
  } catch (err) {
    c.joinErrors.push({ t, error: String(err) });
    return;
  }
  if (!res || res.ok !== true) {
    c.joinErrors.push({ t, res });
    return;
  }
  const missed = res.missed.filter((x) => x.event === 'new_message').map((x) => x.data.eventId);
  c.missed.push(...missed);
  // Nothing live since the join was sent: the newest missed event is the
  // newest seen.
  if (missed.length > 0 && c.live.length === liveBefore) c.lastEventId = missed[missed.length - 1];
  c.joins.push({ t, at: Date.now(), lastEventId: payload.lastEventId ?? null, recovered: res.recovered, missed: missed.length });
  c.joined = true;
}

function report(c) {
  return {
    name: c.name,
    connected: c.socket.connected,
    joined: c.joined,
    connects: c.connects,
    disconnects: c.disconnects,
    connectErrors: c.connectErrors,
    joins: c.joins,
    joinErrors: c.joinErrors,
    live: c.live,
    missed: c.missed,
  };
}

main(async () => {
  const clients = tokens.map((tok, i) => client(`u${i}`, tok));
  const sender = client('sender', senderToken);
  const all = [...clients, sender];
  if (!(await until(() => all.every((c) => c.joined), 15000))) {
    const late = all.filter((c) => !c.joined).map((c) => [c.name, c.connectErrors, c.joinErrors]);
    throw new Error(`not every socket connected and joined within 15 s: ${JSON.stringify(late)}`);
  }
  log(`${all.length} sockets connected and joined '${CHAT}'`);

  const acked = []; // { tempId, eventId, t, at }
  const sendFailures = [];
  const send = async (tempId) => {
    const t = Date.now();
    try {
      const res = await ack(sender.socket, 'send_message', { chatId: CHAT, content: tempId, messageType: 'TEXT', tempId }, 4000);
      if (res && res.ok === true) {
        acked.push({ tempId, eventId: res.eventId, t, at: Date.now() });
        return res;
      }
      sendFailures.push({ tempId, t, res });
    } catch (err) {
      sendFailures.push({ tempId, t, error: String(err) });
    }
    return null;
  };
  const seenBy = (c, eventId) => c.live.includes(eventId) || c.missed.includes(eventId);

  const base = assertOK(await send('baseline'), 'baseline message');
  if (!(await until(() => clients.every((c) => c.live.includes(base.eventId)), 5000))) {
    throw new Error('not every client received the baseline message live within 5 s');
  }
  mark('READY');

  // The sender sends every 20 ms while it is joined, until STOP.
  let stop = false;
  let skipped = 0;
  const pending = [];
  const loop = (async () => {
    for (let seq = 0; !stop; seq++) {
      if (sender.joined && sender.socket.connected) pending.push(send(`m-${seq}`));
      else skipped++;
      await sleep(20);
    }
    await Promise.all(pending);
  })();
  // After STOP (the drained node has exited), the sender goes on until every
  // socket is connected and joined again, so messages keep flowing while the
  // last clients reconnect.
  await command('STOP');
  const settled = await until(() => all.every((c) => c.socket.connected && c.joined), 10000);
  log(settled ? 'every socket connected and joined again' : 'NOT every socket is connected and joined after 10 s');
  await sleep(200);
  stop = true;
  await loop;
  log(`sender stopped: ${acked.length} acked, ${sendFailures.length} failed, ${skipped} ticks skipped while not joined`);
  let fenceSeen = false;
  if (sender.joined) {
    const fence = await send('fence');
    if (fence) fenceSeen = await until(() => clients.every((c) => seenBy(c, fence.eventId)), 5000);
  }
  await sleep(300); // anything still on its way

  const summary = {
    settled,
    fenceSeen,
    skipped,
    acked,
    sendFailures,
    clients: clients.map(report),
    sender: report(sender),
  };
  writeFileSync(summaryPath, JSON.stringify(summary));
  mark('SUMMARY');
  await command('EXIT');
  all.forEach((c) => c.socket.disconnect());
}, 45000);
