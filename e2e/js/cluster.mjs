// Two nodes on one Redis (URL and URL2): chat traffic crosses nodes, the
// per-user cap holds across them, and a client recovers on the other node
// with lastEventId.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, refused, ack, assertOK, addMembers } from './lib.mjs';

const URL2 = env('URL2');

main(async () => {
  await addMembers('cc', 'alice', 'bob'); // through node 1's API; node 2 must see it
  const alice = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_ALICE') } });
  let bob = io(URL2 + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_BOB') } });
  await Promise.all([connected(alice), connected(bob)]);
  assertOK(await ack(alice, 'join_chat', { chatId: 'cc' }), 'alice joins on node 1');
  assertOK(await ack(bob, 'join_chat', { chatId: 'cc' }), 'bob joins on node 2');

  const bobGot = waitFor(bob, 'new_message', 3000, (m) => m.tempId === 'x-1');
  const a1 = assertOK(await ack(alice, 'send_message', { chatId: 'cc', content: 'across', messageType: 'TEXT', tempId: 'x-1' }), 'alice sends');
  const m1 = await bobGot;
  log('bob (node 2) got', m1);
  assert.equal(m1.eventId, a1.eventId);
  const aliceGot = waitFor(alice, 'new_message', 3000, (m) => m.tempId === 'x-2');
  assertOK(await ack(bob, 'send_message', { chatId: 'cc', content: 'back', messageType: 'TEXT', tempId: 'x-2' }), 'bob sends');
  log('alice (node 1) got', await aliceGot);

  const typing = waitFor(bob, 'user_typing');
  alice.emit('typing_start', { chatId: 'cc' });
  log('bob sees typing across nodes', await typing);

  // The cap of 3 holds across the nodes.
  const dave = env('TOKEN_DAVE');
  const daves = [];
  for (const u of [URL, URL, URL2]) {
    const s = io(u + '/messenger', { transports: ['websocket'], auth: { token: dave } });
    daves.push(s);
    await connected(s);
  }
  const fourth = io(URL2 + '/messenger', { transports: ['websocket'], auth: { token: dave } });
  const err = await refused(fourth);
  log("dave's fourth connection (node 2)", { message: err.message, data: err.data });
  assert.equal(err.data && err.data.code, 'CONNECTION_LIMIT');
  fourth.disconnect();
  daves.forEach((s) => s.disconnect());

  // bob leaves node 2, misses two messages, and recovers on node 1.
  bob.disconnect();
  const g1 = assertOK(await ack(alice, 'send_message', { chatId: 'cc', content: 'gap 1', messageType: 'TEXT', tempId: 'g-1' }), 'gap 1');
  const g2 = assertOK(await ack(alice, 'send_message', { chatId: 'cc', content: 'gap 2', messageType: 'TEXT', tempId: 'g-2' }), 'gap 2');
  bob = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_BOB') } });
  await connected(bob);
  const j = assertOK(await ack(bob, 'join_chat', { chatId: 'cc', lastEventId: m1.eventId }), 'bob rejoins on node 1');
  const newMessages = j.missed.filter((x) => x.event === 'new_message').map((x) => x.data.tempId);
  log('missed', j.missed.map((x) => [x.event, x.data.eventId]));
  assert.equal(j.recovered, true);
  assert.deepEqual(newMessages, ['x-2', 'g-1', 'g-2']);
  assert.deepEqual(j.missed.slice(-2).map((x) => x.data.eventId), [g1.eventId, g2.eventId]);
  alice.disconnect();
  bob.disconnect();
});
