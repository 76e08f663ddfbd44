// A client that stops answering pings is dropped by the server after
// pingInterval + pingTimeout (node started with 300ms / 300ms).
//
// How the client is made silent: engine.io-client answers a ping from inside
// Socket._onPacket by calling this._sendPacket("pong"). We replace
// _sendPacket on that one engine instance with a filter that drops "pong" and
// passes everything else. The client still sees the pings (so its own
// pingInterval+pingTimeout timer keeps being reset and it never gives up on
// its side): the only way the connection can end is the server closing it.
// If a future engine.io-client renames _sendPacket, the script fails loudly
// rather than testing nothing.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, connected, disconnected, sleep } from './lib.mjs';

const token = env('TOKEN');

main(async () => {
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  await connected(socket);
  const engine = socket.io.engine;
  assert.equal(typeof engine._sendPacket, 'function', 'engine.io-client internals changed: no _sendPacket to filter');
  let pingsSeen = 0;
  let pongsDropped = 0;
  engine.on('ping', () => pingsSeen++);
  const original = engine._sendPacket.bind(engine);
  engine._sendPacket = (type, ...rest) => {
    if (type === 'pong') {
      pongsDropped++;
      return;
    }
    return original(type, ...rest);
  };
  log('connected; pongs are now dropped', socket.id);
  const started = performance.now();
  const { reason, details } = await disconnected(socket, 5000);
  const after = performance.now() - started;
  log('disconnected', reason, `after ${after.toFixed(0)} ms`, `pings seen ${pingsSeen}, pongs dropped ${pongsDropped}`,
    details && details.context ? `close code ${details.context.code}` : '');
  assert.equal(reason, 'transport close', 'the server closed the transport');
  assert.ok(pongsDropped >= 1, 'at least one pong was withheld');
  assert.ok(after < 5000, `dropped after ${after} ms; want within about pingInterval + pingTimeout (600 ms) plus scheduling slack`);

  // socket.io-client reconnects by itself on a dropped transport; the new
  // engine answers pings again and stays.
  await connected(socket, 5000);
  log('reconnected', socket.id);
  await sleep(1000);
  assert.ok(socket.connected, 'the reconnected client stays connected');
  socket.disconnect();
});
