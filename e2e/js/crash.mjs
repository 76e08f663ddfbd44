// Node crash, driven by crash_test.go (see steps.mjs). Node 1 (URL)
// is SIGKILLed by the test; nodes 2 and 3 (URL2, URL3) live on.
//
// u holds three connections, one per node (the cap). v1 and v2 are on node 1
// and w on node 2, all in chat "crash". When node 1 dies, v1 and v2 do what a
// load balancer does for real clients: on 'disconnect' they open a new socket
// to another node (v1 to node 2, v2 to node 3) and rejoin with the last
// eventId they saw.
//
//   @READY            everyone is connected and joined
//   KILLED <ms>    -> node 1 was SIGKILLed at <ms> (ms since the epoch)
//
// Then: u's connection on node 1 drops; a fourth connection for u on node 2
// is refused with CONNECTION_LIMIT (node 1's entry still counts) and,
// retried every 500 ms, is accepted within 32 s of the kill; v1 and v2 are
// back (connected, joined, every message of w exactly once).
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, sleep, connected, refused, disconnected, ack, assertOK } from './lib.mjs';
import { mark, command, until } from './steps.mjs';

const URLS = [URL, env('URL2'), env('URL3')];
const CHAT = 'crash';
const SLOT_FREE_WITHIN_MS = 32000;
const sock = (url, token) => io(url + '/messenger', { transports: ['websocket'], auth: { token } });

/** A chat member that fails over to URLS[failover] when its node goes away. */
function member(name, node, failover) {
  const token = env(`TOKEN_${name.toUpperCase()}`);
  const m = { name, node, received: [], joins: [], disconnects: [], lastEventId: null, joined: false };
  const attach = (s, n) => {
    m.socket = s;
    m.node = n;
    s.on('new_message', (msg) => {
      if (msg.chatId !== CHAT) return;
      m.received.push(msg.eventId);
      m.lastEventId = msg.eventId;
    });
    s.on('connect', () => join(m));
    s.on('disconnect', (reason) => {
      m.joined = false;
      m.disconnects.push({ t: Date.now(), node: n + 1, reason });
      if (reason === 'io client disconnect' || failover === undefined || n === failover) return;
      s.disconnect(); // no retries against the dead node
      log(`${name}: node ${n + 1} gone (${reason}); reconnecting to node ${failover + 1}`);
      attach(sock(URLS[failover], token), failover);
    });
  };
  attach(sock(URLS[node], token), node);
  return m;
}

async function join(m) {
  const payload = { chatId: CHAT };
  if (m.lastEventId !== null) payload.lastEventId = m.lastEventId;
  const res = assertOK(await ack(m.socket, 'join_chat', payload, 5000), `${m.name} joins on node ${m.node + 1}`);
  for (const x of res.missed) {
    if (x.event === 'new_message') {
      m.received.push(x.data.eventId);
      m.lastEventId = x.data.eventId;
    }
  }
  m.joins.push({ node: m.node + 1, lastEventId: payload.lastEventId ?? null, recovered: res.recovered, missed: res.missed.length });
  m.joined = true;
}

main(async () => {
  const uToken = env('TOKEN_U');
  const u = URLS.map((url) => sock(url, uToken));
  await Promise.all(u.map((s) => connected(s)));
  const v1 = member('v1', 0, 1);
  const v2 = member('v2', 0, 2);
  const w = member('w', 1);
  const members = [v1, v2, w];
  assert.ok(await until(() => members.every((m) => m.joined), 10000), 'v1, v2 and w joined');
  const sent = [];
  const say = async (tempId) => {
    const r = assertOK(await ack(w.socket, 'send_message', { chatId: CHAT, content: tempId, messageType: 'TEXT', tempId }), `w sends ${tempId}`);
    sent.push(r.eventId);
  };
  await say('before');
  assert.ok(await until(() => members.every((m) => m.received.length === 1), 5000), 'everyone has the first message');
  const uDropped = disconnected(u[0], 10000);
  mark('READY');

  const killedAt = Number(await command('KILLED'));
  const since = () => Date.now() - killedAt;
  const drop = await uDropped;
  log(`u's connection on node 1 dropped ${since()} ms after the kill (${drop.reason})`);
  u[0].disconnect(); // no retries against the dead node
  await say('during'); // while v1 and v2 fail over

  // The fourth connection: refused while node 1's entry counts, then accepted.
  let attempts = 0;
  let first = null;
  let fourth = null;
  for (;;) {
    const s = sock(URLS[1], uToken);
    attempts++;
    try {
      await connected(s, 5000);
      fourth = s;
      break;
    } catch (err) {
      s.disconnect();
      if (!err.message.includes('CONNECTION_LIMIT')) throw new Error(`u's fourth connection (attempt ${attempts}): ${err.message}`);
      if (first === null) first = since();
      if (since() > SLOT_FREE_WITHIN_MS) break;
      await sleep(500);
    }
  }
  const freedAfter = since();
  log(`u's fourth connection on node 2: first refused with CONNECTION_LIMIT ${first} ms after the kill; ` +
    (fourth ? `accepted ${freedAfter} ms after the kill (attempt ${attempts})` : `still refused ${freedAfter} ms after the kill`));
  assert.notEqual(first, null, "the first attempt must be refused: node 1's entry still counts right after the crash");
  assert.ok(fourth, `u's slot on the dead node 1 was not usable within ${SLOT_FREE_WITHIN_MS} ms of the kill`);
  // The cap still holds: three connections (nodes 2, 3 and 2).
  const fifth = sock(URLS[2], uToken);
  assert.equal((await refused(fifth)).data.code, 'CONNECTION_LIMIT', 'a further connection for u is refused');
  fifth.disconnect();

  // v1 and v2 are back on nodes 2 and 3 and get everything exactly once.
  assert.ok(await until(() => members.every((m) => m.joined && m.socket.connected), 5000), 'v1 and v2 connected and joined again');
  await say('after');
  assert.ok(await until(() => members.every((m) => m.received.length >= sent.length), 5000), 'every member has every message');
  await sleep(200);
  for (const m of members) {
    log(`${m.name}: on node ${m.node + 1}, joins ${JSON.stringify(m.joins)}, disconnects ${JSON.stringify(m.disconnects)}`);
    assert.deepEqual(m.received, sent, `${m.name} has every message of w exactly once, in order`);
  }
  for (const m of [v1, v2]) {
    assert.equal(m.disconnects.length, 1, `${m.name} was disconnected once, by the crash`);
    assert.equal(m.joins.length, 2);
    assert.equal(m.joins[1].recovered, true, `${m.name} rejoined with lastEventId and recovered`);
  }
  assert.deepEqual(w.disconnects, [], 'w (node 2) stayed connected');
  assert.ok(u[1].connected && u[2].connected, "u's connections on nodes 2 and 3 stayed");
  [...u, fourth].forEach((s) => s.disconnect());
  members.forEach((m) => m.socket.disconnect());
}, 60000);
