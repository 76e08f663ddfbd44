// A second namespace ("/") on the same Manager, i.e. the same WebSocket. The
// node runs with --dev --max-user-connections 1: both namespaces count once,
// so a second WebSocket of the same user is refused.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, connected, refused, ack, assertOK, arrives } from './lib.mjs';

const token = env('TOKEN');

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  await connected(socket);
  const root = socket.io.socket('/', { auth: { token } });
  await connected(root);
  log('connected', { messenger: socket.id, root: root.id });
  assert.notEqual(socket.id, root.id, 'each namespace has its own Socket.IO sid');
  assert.equal(root.io, socket.io, 'same Manager, so one WebSocket');

  assertOK(await ack(socket, 'join_chat', { chatId: 'ns' }), '/messenger join_chat with both namespaces open');

  const other = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  const err = await refused(other);
  log('a second WebSocket of the user', { message: err.message, data: err.data });
  assert.equal(err.data && err.data.code, 'CONNECTION_LIMIT', 'two namespaces on one WebSocket count once');
  other.disconnect();

  // Leaving "/" leaves /messenger working on the same WebSocket.
  root.disconnect();
  assert.equal(await arrives(socket, 'disconnect', 300), false, '/messenger stays');
  const a = assertOK(
    await ack(socket, 'send_message', { chatId: 'ns', content: 'after / left', messageType: 'TEXT', tempId: 'ns-1' }),
    'send_message after / disconnected',
  );
  log('send_message ack', a);
  socket.disconnect();
});
