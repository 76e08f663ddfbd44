// Size limits (node started with --max-frame 4096 --max-content 100, --dev):
// a field over its limit inside an acceptable frame gets TOO_LARGE and the
// connection stays; a frame over --max-frame closes the connection (WebSocket
// close code 1009).
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, connected, disconnected, ack, assertOK, assertRefusal } from './lib.mjs';

const token = env('TOKEN');

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  socket.io.reconnection(false); // the point is the close, not the recovery
  await connected(socket);
  log('connected', socket.id);
  assertOK(await ack(socket, 'join_chat', { chatId: 'big' }), 'join_chat');

  const tooLong = await ack(socket, 'send_message', { chatId: 'big', content: 'x'.repeat(101), messageType: 'TEXT', tempId: 'long' });
  log('content of 101 characters', tooLong);
  assertRefusal(tooLong, 'TOO_LARGE', 'content over --max-content');
  assert.ok(socket.connected, 'still connected after TOO_LARGE');

  const closed = disconnected(socket, 5000);
  socket.emit('send_message', { chatId: 'big', content: 'y'.repeat(8000), messageType: 'TEXT', tempId: 'huge' });
  const { reason, details } = await closed;
  const code = details && details.context ? details.context.code : undefined;
  log('after an 8 KB frame: disconnect', reason, `close code ${code}`, details && details.description);
  assert.equal(reason, 'transport close');
  assert.equal(code, 1009, 'WebSocket close code 1009 (message too big)');
});
