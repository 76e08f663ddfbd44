// Three nodes on one Redis (URL, URL2, URL3; --dev, --typing-expiry 1s,
// --limit-messages 5 per 60 s): every chat event crosses nodes and reaches
// every member exactly once; the per-user connection cap and the per-user
// message budget hold across nodes; lastEventId recovery works on another
// node. Each user makes at most 5 message actions (the budget).
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, sleep, connected, refused, ack, assertOK, assertRefusal } from './lib.mjs';

const URLS = [URL, env('URL2'), env('URL3')];
const CHAT = 'x3';
const CHAT_EVENTS = ['new_message', 'message_edited', 'message_deleted', 'reaction_updated'];

const sock = (url, token) => io(url + '/messenger', { transports: ['websocket'], auth: { token } });

/** Resolves once cond() holds (checked every 20 ms); rejects with what after ms. */
async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** A member: its socket, every chat event it receives in order, its user_typing events. */
function member(name, node) {
  const m = { name, node, socket: sock(URLS[node], env(`TOKEN_${name.toUpperCase()}`)), events: [], typing: [] };
  for (const ev of CHAT_EVENTS) {
    m.socket.on(ev, (d) => {
      if (d.chatId === CHAT) m.events.push({ event: ev, eventId: d.eventId, data: d });
    });
  }
  m.socket.on('user_typing', (d) => {
    if (d.chatId === CHAT) m.typing.push({ ...d, at: performance.now() });
  });
  m.disconnects = [];
  m.socket.on('disconnect', (reason) => m.disconnects.push(reason));
  return m;
}

const seq = (m) => m.events.map((e) => `${e.event} ${e.eventId}`);

main(async () => {
  // alice and erin on node 1, bob on node 2, carol on node 3.
  const alice = member('alice', 0);
  const erin = member('erin', 0);
  const bob = member('bob', 1);
  const carol = member('carol', 2);
  const all = [alice, erin, bob, carol];
  await Promise.all(all.map((m) => connected(m.socket)));
  for (const m of all) assertOK(await ack(m.socket, 'join_chat', { chatId: CHAT }), `${m.name} joins on node ${m.node + 1}`);
  const want = []; // the chat events every member must see, in order

  // Messages from each node.
  const send = async (m, tempId) => {
    const r = assertOK(await ack(m.socket, 'send_message', { chatId: CHAT, content: `${tempId} from ${m.name}`, messageType: 'TEXT', tempId }), `${m.name} sends ${tempId}`);
    want.push(`new_message ${r.eventId}`);
    return r;
  };
  const m1 = await send(alice, 'm1');
  await send(bob, 'm2');
  const m3 = await send(carol, 'm3');

  // An edit on node 1, a delete on node 3.
  const e1 = assertOK(await ack(alice.socket, 'edit_message', { chatId: CHAT, messageId: m1.messageId, content: 'm1, edited' }), 'alice edits m1');
  want.push(`message_edited ${e1.eventId}`);
  const d3 = assertOK(await ack(carol.socket, 'delete_message', { chatId: CHAT, messageId: m3.messageId }), 'carol deletes m3');
  want.push(`message_deleted ${d3.eventId}`);

  // Reactions on node 2: add, a duplicate add (no event), carol's add on node
  // 3 (which every member receives after anything the duplicate could have
  // published: one chat is one ordered channel), remove.
  const thumbs = { chatId: CHAT, messageId: m1.messageId, emoji: '👍' };
  const r1 = assertOK(await ack(bob.socket, 'add_reaction', thumbs), 'bob adds 👍');
  assert.equal(r1.changed, true);
  want.push(`reaction_updated ${r1.eventId}`);
  const dup = assertOK(await ack(bob.socket, 'add_reaction', thumbs), 'bob adds 👍 again (idempotent)');
  log('duplicate add ack', dup);
  assert.equal(dup.changed, false, 'a duplicate add changes nothing');
  const r2 = assertOK(await ack(carol.socket, 'add_reaction', { ...thumbs, emoji: '❤️' }), 'carol adds ❤️');
  want.push(`reaction_updated ${r2.eventId}`);
  const r3 = assertOK(await ack(bob.socket, 'remove_reaction', thumbs), 'bob removes 👍');
  assert.equal(r3.changed, true);
  want.push(`reaction_updated ${r3.eventId}`);

  await until(() => all.every((m) => m.events.length >= want.length), 5000, `every member has ${want.length} chat events`);
  await sleep(200); // a duplicate would arrive right behind
  for (const m of all) {
    log(`${m.name} (node ${m.node + 1}) chat events`, seq(m));
    assert.deepEqual(seq(m), want, `${m.name} sees every chat event exactly once, in order`);
  }
  const reactions = alice.events.filter((e) => e.event === 'reaction_updated').map((e) => [e.data.userId, e.data.emoji, e.data.action]);
  assert.deepEqual(reactions, [['bob', '👍', 'added'], ['carol', '❤️', 'added'], ['bob', '👍', 'removed']]);
  assert.equal(erin.events[3].data.content, 'm1, edited');
  assert.equal(bob.events[4].data.messageId, m3.messageId);

  // Typing: alice (node 1) starts and never stops; the others (nodes 1, 2, 3)
  // see the start, then a stop after the 1 s expiry. carol (node 3) starts and
  // stops; the others see both at once.
  const t0 = performance.now();
  alice.socket.emit('typing_start', { chatId: CHAT });
  const others = (who) => all.filter((m) => m !== who);
  const typed = (m, user, isTyping) => m.typing.some((x) => x.userId === user && x.isTyping === isTyping);
  await until(() => others(alice).every((m) => typed(m, 'alice', true)), 3000, "everyone sees alice's typing start");
  await until(() => others(alice).every((m) => typed(m, 'alice', false)), 4000, "everyone sees alice's typing expire as a stop");
  for (const m of others(alice)) {
    const stop = m.typing.find((x) => x.userId === 'alice' && !x.isTyping);
    const after = stop.at - t0;
    log(`${m.name} (node ${m.node + 1}) sees alice's expiry stop ${after.toFixed(0)} ms after the start`);
    assert.ok(after >= 800 && after <= 3500, `${m.name}: expiry stop after ${after.toFixed(0)} ms, want about 1 s`);
  }
  carol.socket.emit('typing_start', { chatId: CHAT });
  await until(() => others(carol).every((m) => typed(m, 'carol', true)), 3000, "everyone sees carol's typing start");
  const t1 = performance.now();
  carol.socket.emit('typing_stop', { chatId: CHAT });
  await until(() => others(carol).every((m) => typed(m, 'carol', false)), 3000, "everyone sees carol's typing stop");
  log(`carol's explicit stop reached everyone in ${(performance.now() - t1).toFixed(0)} ms`);
  await sleep(1300); // past another expiry: a stopped start must not expire again
  for (const m of all) {
    const got = m.typing.map((x) => [x.userId, x.isTyping]);
    const exp = [];
    if (m !== alice) exp.push(['alice', true], ['alice', false]);
    if (m !== carol) exp.push(['carol', true], ['carol', false]);
    log(`${m.name} user_typing`, got);
    assert.deepEqual(got, exp, `${m.name}: each typing start and stop exactly once, none of its own`);
  }

  // The cap: dave holds three connections on three nodes; a fourth is
  // refused on every node.
  const dave = env('TOKEN_DAVE');
  const daves = [];
  for (const u of URLS) {
    const s = sock(u, dave);
    daves.push(s);
    await connected(s);
  }
  for (const [i, u] of URLS.entries()) {
    const s = sock(u, dave);
    const err = await refused(s);
    s.disconnect();
    log(`dave's fourth connection on node ${i + 1}`, { message: err.message, data: err.data });
    assert.equal(err.data && err.data.code, 'CONNECTION_LIMIT', `fourth connection on node ${i + 1}`);
  }
  // Refusals hold no slot: closing one connection frees exactly one.
  daves[1].disconnect();
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = sock(URLS[2], dave);
    try {
      await connected(s);
      daves[1] = s;
      break;
    } catch (err) {
      s.disconnect();
      if (Date.now() > deadline) throw new Error(`dave's slot on node 2 was not freed within 5 s: ${err.message}`);
      await sleep(100);
    }
  }
  log("dave's connection on node 2 closed: a new one on node 3 is accepted");
  const extra = sock(URLS[0], dave);
  assert.equal((await refused(extra)).data.code, 'CONNECTION_LIMIT', 'and the cap holds again');
  extra.disconnect();
  daves.forEach((s) => s.disconnect());

  // One budget: rl's messages through nodes 1 and 2 share 5 per 60 s.
  const rlA = sock(URLS[0], env('TOKEN_RL'));
  const rlB = sock(URLS[1], env('TOKEN_RL'));
  await Promise.all([connected(rlA), connected(rlB)]);
  assertOK(await ack(rlA, 'join_chat', { chatId: 'rl3' }), 'rl joins on node 1');
  assertOK(await ack(rlB, 'join_chat', { chatId: 'rl3' }), 'rl joins on node 2');
  for (let i = 1; i <= 5; i++) {
    const s = i % 2 ? rlA : rlB;
    assertOK(await ack(s, 'send_message', { chatId: 'rl3', content: `b${i}`, messageType: 'TEXT', tempId: `b${i}` }), `message ${i} of 5 (node ${i % 2 ? 1 : 2})`);
  }
  for (const [i, s] of [rlB, rlA].entries()) {
    const over = await ack(s, 'send_message', { chatId: 'rl3', content: 'over', messageType: 'TEXT', tempId: `over-${i}` });
    log(`message ${6 + i} (node ${i === 0 ? 2 : 1})`, over);
    const e = assertRefusal(over, 'RATE_LIMITED', `message ${6 + i} over the shared budget`);
    assert.equal(typeof e.retryAfterMs, 'number', 'retryAfterMs is a number');
    assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 60000, `retryAfterMs ${e.retryAfterMs} within the 60 s window`);
  }
  assert.ok(rlA.connected && rlB.connected, 'rate limiting closes nothing');
  rlA.disconnect();
  rlB.disconnect();

  // Recovery on another node: bob leaves node 2 and misses a message from
  // node 1, one from node 3, an edit and a reaction; he rejoins on node 3
  // with the last eventId he saw.
  const last = bob.events[bob.events.length - 1].eventId;
  bob.socket.disconnect();
  const mark = alice.events.length;
  const g1 = assertOK(await ack(alice.socket, 'send_message', { chatId: CHAT, content: 'gap 1', messageType: 'TEXT', tempId: 'g1' }), 'gap 1 (node 1)');
  const g2 = assertOK(await ack(carol.socket, 'send_message', { chatId: CHAT, content: 'gap 2', messageType: 'TEXT', tempId: 'g2' }), 'gap 2 (node 3)');
  const ge = assertOK(await ack(alice.socket, 'edit_message', { chatId: CHAT, messageId: g1.messageId, content: 'gap 1, edited' }), 'gap edit (node 1)');
  const gr = assertOK(await ack(erin.socket, 'add_reaction', { chatId: CHAT, messageId: g2.messageId, emoji: '🎉' }), 'gap reaction (node 1)');
  const missedWant = [`new_message ${g1.eventId}`, `new_message ${g2.eventId}`, `message_edited ${ge.eventId}`, `reaction_updated ${gr.eventId}`];
  await until(() => alice.events.length >= mark + 4, 3000, 'alice sees the four gap events');
  assert.deepEqual(seq(alice).slice(mark), missedWant);

  const bob2 = sock(URLS[2], env('TOKEN_BOB'));
  const bobLive = [];
  bob2.on('new_message', (d) => bobLive.push(d.eventId));
  await connected(bob2);
  const j = assertOK(await ack(bob2, 'join_chat', { chatId: CHAT, lastEventId: last }), 'bob rejoins on node 3 with lastEventId');
  const missed = j.missed.map((x) => `${x.event} ${x.data.eventId}`);
  log('bob missed (rejoin on node 3)', missed, 'recovered', j.recovered);
  assert.equal(j.recovered, true);
  assert.deepEqual(missed, missedWant, 'exactly the missed events, in order');
  assert.equal(j.missed[2].data.content, 'gap 1, edited');
  // And live again, without the recovered events repeated.
  const fin = assertOK(await ack(carol.socket, 'send_message', { chatId: CHAT, content: 'after', messageType: 'TEXT', tempId: 'fin' }), 'carol sends after the rejoin');
  await until(() => bobLive.includes(fin.eventId), 3000, 'bob (node 3) gets the next message live');
  await sleep(200);
  assert.deepEqual(bobLive, [fin.eventId], 'bob gets only the new message live');

  for (const m of [alice, erin, carol]) assert.deepEqual(m.disconnects, [], `${m.name} stayed connected`);
  [alice, erin, carol].forEach((m) => m.socket.disconnect());
  bob2.disconnect();
}, 30000);
