// Connect with the exact client code of PROTOCOL.md and exchange events with
// acknowledgements. The node runs with --dev (open membership).
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, record, connected, ack, assertOK, assertRefusal, arrives, sleep, ISO_MS } from './lib.mjs';

const token = env('TOKEN');

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  await connected(socket);
  log('connected', socket.id, 'transport', socket.io.engine.transport.name);
  assert.equal(typeof socket.id, 'string');
  assert.equal(socket.io.engine.transport.name, 'websocket');

  const joined = waitFor(socket, 'chat_joined');
  const j = assertOK(await ack(socket, 'join_chat', { chatId: 'lobby' }), 'join_chat ack');
  log('join_chat ack', j);
  assert.equal(j.chatId, 'lobby');
  assert.equal(typeof j.recovered, 'boolean');
  assert.ok(Array.isArray(j.missed), 'missed is an array');
  const je = await joined;
  log('chat_joined', je);
  assert.equal(je.chatId, 'lobby');

  const news = record(socket, 'new_message');
  const sent = waitFor(socket, 'message_sent');
  const a = assertOK(
    await ack(socket, 'send_message', { chatId: 'lobby', content: 'hello', messageType: 'TEXT', tempId: 't-1' }),
    'send_message ack',
  );
  log('send_message ack', a);
  for (const k of ['tempId', 'messageId', 'eventId', 'chatId', 'createdAt']) assert.ok(k in a, `ack lacks ${k}`);
  assert.equal(a.tempId, 't-1');
  assert.equal(a.chatId, 'lobby');
  assert.match(a.createdAt, ISO_MS);
  const ms = await sent;
  log('message_sent', ms);
  assert.deepEqual(
    { tempId: ms.tempId, messageId: ms.messageId, chatId: ms.chatId, createdAt: ms.createdAt },
    { tempId: 't-1', messageId: a.messageId, chatId: 'lobby', createdAt: a.createdAt },
  );
  await sleep(300);
  log('new_message', news);
  assert.equal(news.length, 1, 'the sender gets its own new_message exactly once');
  assert.equal(news[0].tempId, 't-1');
  assert.equal(news[0].eventId, a.eventId);
  assert.equal(news[0].messageId, a.messageId);

  // A bad payload is refused through the ack and the connection stays.
  const bad = await ack(socket, 'send_message', { chatId: 'lobby', messageType: 'TEXT', tempId: 't-2' });
  log('send_message without content', bad);
  assertRefusal(bad, 'INVALID_PAYLOAD', 'send_message without content');

  // Without an ack, the same failure comes as an error event.
  const errEv = waitFor(socket, 'error');
  socket.emit('send_message', { chatId: 'lobby', content: 42, messageType: 'TEXT', tempId: 't-3' });
  const e = await errEv;
  log('error event', e);
  assert.equal(e.event, 'send_message');
  assert.equal(e.code, 'INVALID_PAYLOAD');
  assert.equal(e.tempId, 't-3');

  // An event for a chat this connection has not joined.
  const nj = await ack(socket, 'send_message', { chatId: 'elsewhere', content: 'x', messageType: 'TEXT', tempId: 't-4' });
  log('send_message to a chat not joined', nj);
  assertRefusal(nj, 'NOT_JOINED', 'send_message to a chat not joined');

  // Clients may not send SYSTEM messages.
  const sys = await ack(socket, 'send_message', { chatId: 'lobby', content: 'x', messageType: 'SYSTEM', tempId: 't-5' });
  log('SYSTEM message', sys);
  assertRefusal(sys, 'INVALID_PAYLOAD', 'SYSTEM messageType');

  // A binary packet is refused with INVALID_PAYLOAD; the connection stays.
  const bin = await ack(socket, 'send_message', { chatId: 'lobby', content: Buffer.from('bytes'), messageType: 'FILE', tempId: 't-6' });
  log('binary send_message', bin);
  assertRefusal(bin, 'INVALID_PAYLOAD', 'binary packet');

  assert.ok(socket.connected, 'still connected after the refusals');
  const again = assertOK(
    await ack(socket, 'send_message', { chatId: 'lobby', content: 'still here', messageType: 'TEXT', tempId: 't-7' }),
    'send_message after refusals',
  );
  assert.equal(again.tempId, 't-7');
  assert.equal(await arrives(socket, 'disconnect', 200), false, 'no disconnect');
  socket.disconnect();
});
