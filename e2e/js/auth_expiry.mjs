// A live connection whose token expires gets error { code: AUTH_EXPIRED } and
// then a Socket.IO DISCONNECT (reason "io server disconnect").
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, disconnected } from './lib.mjs';

const token = env('TOKEN'); // expires about 4 s after it was minted

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  await connected(socket);
  log('connected', socket.id);
  const errP = waitFor(socket, 'error', 8000);
  const discP = disconnected(socket, 9000);
  const e = await errP;
  log('error event', e);
  assert.equal(e.code, 'AUTH_EXPIRED');
  const { reason } = await discP;
  log('disconnect', reason);
  assert.equal(reason, 'io server disconnect');
  assert.equal(socket.active, false, 'the client must not reconnect with the expired token by itself');
});
