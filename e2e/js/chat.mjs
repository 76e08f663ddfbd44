// Two users in a chat exchange messages (node without --dev; membership
// through the server API): both get new_message with the sender's tempId,
// exactly once; the sender gets message_sent.
import assert from 'node:assert/strict';
import { main, log, waitFor, record, ack, assertOK, joinedPair, sleep, ISO_MS } from './lib.mjs';

function checkNewMessage(m, want) {
  for (const k of ['eventId', 'messageId', 'chatId', 'senderId', 'content', 'messageType', 'attachments', 'createdAt']) {
    assert.ok(k in m, `new_message lacks ${k}: ${JSON.stringify(m)}`);
  }
  assert.equal(typeof m.eventId, 'string');
  assert.equal(typeof m.messageId, 'string');
  assert.match(m.createdAt, ISO_MS);
  assert.ok(Array.isArray(m.attachments), 'attachments is an array');
  for (const [k, v] of Object.entries(want)) assert.deepEqual(m[k], v, `new_message.${k}`);
}

main(async () => {
  const { alice, bob } = await joinedPair('c1');
  const aliceNew = record(alice, 'new_message');
  const bobNew = record(bob, 'new_message');
  const aliceSent = record(alice, 'message_sent');
  const bobSent = record(bob, 'message_sent');

  // alice → chat
  const bobGotA1 = waitFor(bob, 'new_message', 3000, (m) => m.tempId === 'a-1');
  const a1 = assertOK(await ack(alice, 'send_message', { chatId: 'c1', content: 'hi bob', messageType: 'TEXT', tempId: 'a-1' }), 'alice send');
  await bobGotA1;
  // bob → chat, replying, with an attachment reference
  const att = [{ url: 'https://files.example.com/f/1.png', name: '1.png', mimeType: 'image/png', size: 1234 }];
  const aliceGotB1 = waitFor(alice, 'new_message', 3000, (m) => m.tempId === 'b-1');
  const b1 = assertOK(
    await ack(bob, 'send_message', { chatId: 'c1', content: 'hi alice', messageType: 'IMAGE', tempId: 'b-1', attachments: att, replyTo: a1.messageId }),
    'bob send',
  );
  await aliceGotB1;
  await sleep(300); // anything duplicated would have arrived by now

  log('alice new_message', aliceNew);
  log('bob new_message', bobNew);
  log('alice message_sent', aliceSent, 'bob message_sent', bobSent);
  for (const [who, got] of [['alice', aliceNew], ['bob', bobNew]]) {
    assert.equal(got.length, 2, `${who} gets each message exactly once`);
    checkNewMessage(got[0], { chatId: 'c1', senderId: 'alice', senderName: 'Alice', content: 'hi bob', messageType: 'TEXT', tempId: 'a-1', messageId: a1.messageId, eventId: a1.eventId });
    checkNewMessage(got[1], { chatId: 'c1', senderId: 'bob', content: 'hi alice', messageType: 'IMAGE', tempId: 'b-1', messageId: b1.messageId, eventId: b1.eventId, replyTo: a1.messageId, attachments: att });
  }
  assert.notEqual(a1.eventId, b1.eventId);
  assert.equal(aliceSent.length, 1, 'alice gets one message_sent');
  assert.equal(bobSent.length, 1, 'bob gets one message_sent');
  assert.deepEqual(
    { tempId: aliceSent[0].tempId, messageId: aliceSent[0].messageId, chatId: aliceSent[0].chatId, createdAt: aliceSent[0].createdAt },
    { tempId: 'a-1', messageId: a1.messageId, chatId: 'c1', createdAt: aliceNew[0].createdAt },
  );
  assert.equal(bobSent[0].tempId, 'b-1');

  // leave_chat: no more deliveries to bob.
  const left = waitFor(bob, 'chat_left');
  assertOK(await ack(bob, 'leave_chat', { chatId: 'c1' }), 'bob leave_chat');
  log('chat_left', await left);
  assertOK(await ack(alice, 'send_message', { chatId: 'c1', content: 'gone?', messageType: 'TEXT', tempId: 'a-2' }), 'alice send after bob left');
  await sleep(300);
  assert.equal(bobNew.length, 2, 'bob left the chat and gets nothing more');
  alice.disconnect();
  bob.disconnect();
});
