// Outside --dev, joining a chat one is not a member of gets NOT_MEMBER, both
// through an ack and, without one, as an error event.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, ack, assertOK, assertRefusal, addMembers } from './lib.mjs';

const carolToken = env('TOKEN_CAROL');

main(async () => {
  await addMembers('private', 'alice');
  const carol = io(URL + '/messenger', { transports: ['websocket'], auth: { token: carolToken } });
  await connected(carol);
  const res = await ack(carol, 'join_chat', { chatId: 'private' });
  log('join_chat ack', res);
  assertRefusal(res, 'NOT_MEMBER', 'join_chat by a non-member');

  const errP = waitFor(carol, 'error');
  carol.emit('join_chat', { chatId: 'private' });
  const e = await errP;
  log('error event', e);
  assert.equal(e.event, 'join_chat');
  assert.equal(e.code, 'NOT_MEMBER');
  assert.equal(e.chatId, 'private');

  // Once added, carol may join.
  await addMembers('private', 'carol');
  const ok = assertOK(await ack(carol, 'join_chat', { chatId: 'private' }), 'join_chat after being added');
  log('join_chat after being added', ok);
  assert.ok(carol.connected);
  carol.disconnect();
});
