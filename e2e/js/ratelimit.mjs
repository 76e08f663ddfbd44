// send_message is limited to 30 per user per minute (the default): the 31st
// inside the window gets RATE_LIMITED with retryAfterMs, and edits share the
// budget. The connection stays.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, ack, assertOK, assertRefusal, addMembers } from './lib.mjs';

const LIMIT = Number(env('LIMIT'));

main(async () => {
  await addMembers('c5', 'alice');
  const alice = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_ALICE') } });
  await connected(alice);
  assertOK(await ack(alice, 'join_chat', { chatId: 'c5' }), 'join');
  let first;
  for (let i = 1; i <= LIMIT; i++) {
    const r = assertOK(await ack(alice, 'send_message', { chatId: 'c5', content: `m${i}`, messageType: 'TEXT', tempId: `rl-${i}` }), `message ${i} of ${LIMIT}`);
    first = first || r;
  }
  log(`${LIMIT} messages accepted`);
  const over = await ack(alice, 'send_message', { chatId: 'c5', content: 'one too many', messageType: 'TEXT', tempId: `rl-${LIMIT + 1}` });
  log(`message ${LIMIT + 1}`, over);
  const e = assertRefusal(over, 'RATE_LIMITED', `message ${LIMIT + 1}`);
  assert.equal(typeof e.retryAfterMs, 'number', 'retryAfterMs is a number');
  assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 60000, `retryAfterMs ${e.retryAfterMs} within the 1 min window`);

  // The same refusal without an ack, as an error event.
  const errP = waitFor(alice, 'error');
  alice.emit('send_message', { chatId: 'c5', content: 'again', messageType: 'TEXT', tempId: 'rl-x' });
  const ev = await errP;
  log('error event', ev);
  assert.equal(ev.code, 'RATE_LIMITED');
  assert.equal(ev.event, 'send_message');
  assert.equal(ev.tempId, 'rl-x');
  assert.equal(typeof ev.retryAfterMs, 'number');

  // edit_message shares the budget.
  const edit = await ack(alice, 'edit_message', { chatId: 'c5', messageId: first.messageId, content: 'edited' });
  log('edit over the budget', edit);
  assertRefusal(edit, 'RATE_LIMITED', 'edit_message over the shared budget');

  // Other actions have their own budgets.
  assertOK(await ack(alice, 'leave_chat', { chatId: 'c5' }), 'leave_chat is not limited by the message budget');
  assert.ok(alice.connected, 'rate limiting never closes the connection');
  alice.disconnect();
});
