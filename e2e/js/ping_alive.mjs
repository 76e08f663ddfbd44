// With short heartbeats (--ping-interval 300ms, --ping-timeout 1s) a client
// that answers pings stays connected across many intervals.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, connected, ack, assertOK, sleep } from './lib.mjs';

const token = env('TOKEN');

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  let pings = 0;
  const disconnects = [];
  socket.io.on('ping', () => pings++); // the Manager re-emits each Engine.IO ping
  socket.on('disconnect', (reason) => disconnects.push(reason));
  await connected(socket);
  const sid = socket.id;
  log('connected', sid);
  await sleep(2500);
  log('pings received in 2.5 s', String(pings), 'disconnects', disconnects);
  assert.deepEqual(disconnects, [], 'no disconnect across the ping intervals');
  assert.ok(pings >= 5, `want at least 5 pings in 2.5 s at a 300 ms interval, got ${pings}`);
  assert.equal(socket.id, sid, 'same session');
  const j = assertOK(await ack(socket, 'join_chat', { chatId: 'heartbeat' }), 'join_chat after the intervals');
  log('join_chat ack', j);
  socket.disconnect();
});
