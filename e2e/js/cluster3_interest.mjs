// Interest-based subscription, driven by cluster3_test.go (see
// steps.mjs). Chat "ix" has members on node 1 (x1) and node 2 (x2);
// chat "iy" on node 1 (y1) and node 3 (y3), so node 3 has users, but none in
// "ix".
//
//   @JOINED       everyone is connected and joined
//   FLOOD <n>  -> x1 sends n messages to "ix", x2 receives them all; then y1
//                 sends one message to "iy", y3 receives it
//   @FLOODED
//   LEAVE      -> x2 leaves "ix"
//   @LEFT
//   EXIT       -> the sockets close and the script ends
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, sleep, connected, ack, assertOK } from './lib.mjs';
import { mark, command, until } from './steps.mjs';

const URLS = [URL, env('URL2'), env('URL3')];
const sock = (url, token) => io(url + '/messenger', { transports: ['websocket'], auth: { token } });

main(async () => {
  const x1 = sock(URLS[0], env('TOKEN_X1'));
  const x2 = sock(URLS[1], env('TOKEN_X2'));
  const y1 = sock(URLS[0], env('TOKEN_Y1'));
  const y3 = sock(URLS[2], env('TOKEN_Y3'));
  const all = [x1, x2, y1, y3];
  await Promise.all(all.map((s) => connected(s)));
  const got = new Map(all.map((s) => [s, []]));
  for (const s of all) s.on('new_message', (m) => got.get(s).push(m));
  assertOK(await ack(x1, 'join_chat', { chatId: 'ix' }), 'x1 joins ix on node 1');
  assertOK(await ack(x2, 'join_chat', { chatId: 'ix' }), 'x2 joins ix on node 2');
  assertOK(await ack(y1, 'join_chat', { chatId: 'iy' }), 'y1 joins iy on node 1');
  assertOK(await ack(y3, 'join_chat', { chatId: 'iy' }), 'y3 joins iy on node 3');
  mark('JOINED');

  const n = Number(await command('FLOOD'));
  const pending = [];
  for (let i = 0; i < n; i++) {
    pending.push(ack(x1, 'send_message', { chatId: 'ix', content: `flood ${i}`, messageType: 'TEXT', tempId: `f${i}` }, 10000));
  }
  (await Promise.all(pending)).forEach((r, i) => assertOK(r, `flood message ${i}`));
  assert.ok(await until(() => got.get(x1).length >= n && got.get(x2).length >= n, 10000),
    `x1 (node 1) received ${got.get(x1).length} and x2 (node 2) ${got.get(x2).length} of ${n}`);
  assertOK(await ack(y1, 'send_message', { chatId: 'iy', content: 'for iy', messageType: 'TEXT', tempId: 'y' }), 'y1 sends to iy');
  assert.ok(await until(() => got.get(y1).length >= 1 && got.get(y3).length >= 1, 5000), 'y1 and y3 (node 3) receive the iy message');
  await sleep(200); // a stray ix delivery to node 3 would show by now
  log(`x1 ${got.get(x1).length}, x2 ${got.get(x2).length}, y1 ${got.get(y1).length}, y3 ${got.get(y3).length} messages received`);
  assert.equal(got.get(y3).length, 1, 'y3 gets nothing of ix');
  assert.equal(got.get(y1).length, 1, 'y1 gets nothing of ix');
  assert.equal(got.get(x1).length, n, 'x1 gets each of ix once and nothing of iy');
  assert.equal(got.get(x2).length, n, 'x2 gets each of ix once');
  mark('FLOODED');

  await command('LEAVE');
  assertOK(await ack(x2, 'leave_chat', { chatId: 'ix' }), 'x2 leaves ix');
  mark('LEFT');

  await command('EXIT');
  all.forEach((s) => s.disconnect());
}, 40000);
