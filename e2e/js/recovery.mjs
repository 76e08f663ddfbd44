// A client that reconnects and passes lastEventId to join_chat gets exactly
// what it missed, in order, with recovered: true; an id older than the
// retained history (node with --history-size 5) gives recovered: false.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, ack, assertOK, joinedPair } from './lib.mjs';

const bobToken = env('TOKEN_BOB');

main(async () => {
  const pair = await joinedPair('c6');
  const alice = pair.alice;
  let bob = pair.bob;

  const seen = waitFor(bob, 'new_message', 3000, (m) => m.tempId === 'seen');
  assertOK(await ack(alice, 'send_message', { chatId: 'c6', content: 'before', messageType: 'TEXT', tempId: 'seen' }), 'send before');
  const lastEventId = (await seen).eventId;
  log('bob saw eventId', lastEventId);
  bob.disconnect();

  // While bob is away: two messages, an edit and a reaction.
  const m1 = assertOK(await ack(alice, 'send_message', { chatId: 'c6', content: 'missed 1', messageType: 'TEXT', tempId: 'miss-1' }), 'missed 1');
  const m2 = assertOK(await ack(alice, 'send_message', { chatId: 'c6', content: 'missed 2', messageType: 'TEXT', tempId: 'miss-2' }), 'missed 2');
  const editedP = waitFor(alice, 'message_edited');
  assertOK(await ack(alice, 'edit_message', { chatId: 'c6', messageId: m1.messageId, content: 'missed 1, edited' }), 'edit');
  const edited = await editedP;
  const reactedP = waitFor(alice, 'reaction_updated');
  assertOK(await ack(alice, 'add_reaction', { chatId: 'c6', messageId: m2.messageId, emoji: '🎉' }), 'react');
  const reacted = await reactedP;
  const wantIds = [m1.eventId, m2.eventId, edited.eventId, reacted.eventId];
  log('events bob missed', wantIds);

  bob = io(URL + '/messenger', { transports: ['websocket'], auth: { token: bobToken } });
  await connected(bob);
  const joinedP = waitFor(bob, 'chat_joined');
  const j = assertOK(await ack(bob, 'join_chat', { chatId: 'c6', lastEventId }), 'rejoin with lastEventId');
  log('join_chat ack', j);
  assert.equal(j.chatId, 'c6');
  assert.equal(j.recovered, true, 'nothing was lost');
  assert.deepEqual(j.missed.map((x) => x.event), ['new_message', 'new_message', 'message_edited', 'reaction_updated']);
  assert.deepEqual(j.missed.map((x) => x.data.eventId), wantIds, 'exactly the missed events, in order');
  assert.equal(j.missed[0].data.tempId, 'miss-1');
  assert.equal(j.missed[0].data.content, 'missed 1');
  assert.equal(j.missed[1].data.messageId, m2.messageId);
  assert.equal(j.missed[2].data.content, 'missed 1, edited');
  assert.equal(j.missed[3].data.emoji, '🎉');
  const je = await joinedP;
  assert.deepEqual(je, { chatId: j.chatId, recovered: j.recovered, missed: j.missed }, 'chat_joined carries the same');

  // Up to date: nothing missed.
  assertOK(await ack(bob, 'leave_chat', { chatId: 'c6' }), 'leave');
  const upToDate = assertOK(await ack(bob, 'join_chat', { chatId: 'c6', lastEventId: reacted.eventId }), 'rejoin up to date');
  log('rejoin with the newest id', upToDate);
  assert.equal(upToDate.recovered, true);
  assert.deepEqual(upToDate.missed, []);

  // Older than the retained history (5 events): recovered false.
  for (let i = 0; i < 6; i++) {
    assertOK(await ack(alice, 'send_message', { chatId: 'c6', content: `flood ${i}`, messageType: 'TEXT', tempId: `fl-${i}` }), `flood ${i}`);
  }
  assertOK(await ack(bob, 'leave_chat', { chatId: 'c6' }), 'leave');
  const old = assertOK(await ack(bob, 'join_chat', { chatId: 'c6', lastEventId }), 'rejoin beyond history');
  log('rejoin beyond history', { recovered: old.recovered, missed: old.missed.map((x) => x.data.eventId) });
  assert.equal(old.recovered, false, 'events were lost');
  assert.ok(old.missed.length <= 5, 'at most the retained history');
  alice.disconnect();
  bob.disconnect();
});
