// The server API (admin port, Authorization: Bearer <key>): refuses a missing
// or wrong key with 401 and a JSON error; adds a member; posts a message that
// connected clients receive; emits a user event to every connection of the
// user; refuses a reserved event name; removing a member stops deliveries.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, api, waitFor, record, connected, ack, assertOK, assertRefusal, sleep } from './lib.mjs';

function assertJSONError(r, status, what) {
  assert.equal(r.status, status, `${what}: status`);
  assert.equal(typeof r.body, 'object', `${what}: body is JSON: ${JSON.stringify(r.body)}`);
  assert.ok(r.body && r.body.error && typeof r.body.error.code === 'string' && typeof r.body.error.message === 'string',
    `${what}: body is { error: { code, message } }: ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') || '', /application\/json/, `${what}: content-type`);
}

const ok = (r, what) => assert.ok(r.status >= 200 && r.status < 300, `${what}: status ${r.status} ${JSON.stringify(r.body)}`);

main(async () => {
  assertJSONError(await api('PUT', '/api/chats/c7/members/alice', undefined, null), 401, 'no API key');
  assertJSONError(await api('PUT', '/api/chats/c7/members/alice', undefined, 'wrong-key'), 401, 'wrong API key');
  assertJSONError(await api('GET', '/api/chats/c7/members', undefined, 'wrong-key'), 401, 'wrong API key on GET');

  const alice = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_ALICE') } });
  const alice2 = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_ALICE') } });
  await Promise.all([connected(alice), connected(alice2)]);
  assertRefusal(await ack(alice, 'join_chat', { chatId: 'c7' }), 'NOT_MEMBER', 'join before the API adds alice');

  ok(await api('PUT', '/api/chats/c7/members/alice'), 'add alice');
  ok(await api('PUT', '/api/chats/c7/members/bob'), 'add bob');
  const members = await api('GET', '/api/chats/c7/members');
  ok(members, 'list members');
  const list = Array.isArray(members.body) ? members.body : members.body && members.body.members;
  assert.ok(Array.isArray(list), `members list in ${JSON.stringify(members.body)}`);
  assert.deepEqual([...list].sort(), ['alice', 'bob']);

  assertOK(await ack(alice, 'join_chat', { chatId: 'c7' }), 'join after the API added alice');
  const got = record(alice, 'new_message');
  const msgP = waitFor(alice, 'new_message');
  const post = await api('POST', '/api/chats/c7/messages', { senderId: 'bob', content: 'from the backend', messageType: 'TEXT' });
  ok(post, 'post a message');
  const m = await msgP;
  log('alice new_message', m);
  assert.equal(m.chatId, 'c7');
  assert.equal(m.senderId, 'bob');
  assert.equal(m.content, 'from the backend');
  assert.equal(m.messageType, 'TEXT');
  assert.equal(typeof m.eventId, 'string');
  assertJSONError(await api('POST', '/api/chats/c7/messages', { senderId: 'bob', messageType: 'TEXT' }), 400, 'message without content');

  // A user event reaches every connection of the user.
  const evs = [waitFor(alice, 'order_shipped'), waitFor(alice2, 'order_shipped')];
  ok(await api('POST', '/api/users/alice/events', { event: 'order_shipped', data: { orderId: 'o-1' } }), 'user event');
  const [e1, e2] = await Promise.all(evs);
  log('order_shipped on both connections', e1, e2);
  assert.deepEqual(e1, { orderId: 'o-1' });
  assert.deepEqual(e2, { orderId: 'o-1' });
  for (const reserved of ['connect', 'disconnect', 'connect_error']) {
    assertJSONError(await api('POST', '/api/users/alice/events', { event: reserved, data: {} }), 400, `reserved event ${reserved}`);
  }

  // Removing alice makes her connections leave the chat.
  ok(await api('DELETE', '/api/chats/c7/members/alice'), 'remove alice');
  await sleep(200);
  ok(await api('POST', '/api/chats/c7/messages', { senderId: 'bob', content: 'after removal', messageType: 'TEXT' }), 'post after removal');
  await sleep(500);
  log('alice new_message', got.map((x) => x.content));
  assert.deepEqual(got.map((x) => x.content), ['from the backend'], 'nothing after alice was removed');
  assert.ok(alice.connected && alice2.connected, 'connections stay');
  alice.disconnect();
  alice2.disconnect();
});
