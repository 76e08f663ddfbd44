// Checks the "connect" and "errors" snippets of docs/CLIENT.md (the Go test
// prepends them): a socket without transports: ['websocket'] never connects
// and gets 'xhr poll error'; connectChat connects; handleRefusals renews an
// expired token (at connect and on a live connection) and reports
// CONNECTION_LIMIT; emitWithRetry waits out RATE_LIMITED and does not retry
// NOT_MEMBER.
import assert from 'node:assert/strict';
import { URL, env, main, log, waitFor, sleep, addMembers } from '../lib.mjs';

const serverUrl = URL;
const fresh = env('TOKEN_ALICE');
const expired = env('TOKEN_ALICE_EXPIRED');
const shortLived = env('TOKEN_ALICE_SHORT'); // expires about 3 s after minting
const bob = env('TOKEN_BOB');

main(async () => {
  // 1. transports forgotten: polling is refused, the client retries for ever.
  const polling = io(serverUrl + '/messenger', { auth: { token: fresh }, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  const errors = [];
  polling.on('connect_error', (err) => errors.push(err));
  await waitFor(polling, 'connect_error', 5000);
  await sleep(600);
  log('without transports', errors.map((e) => e.message));
  assert.equal(polling.connected, false);
  assert.equal(errors[0].message, 'xhr poll error');
  assert.equal(errors[0].data, undefined, 'no code: the client keeps retrying');
  assert.ok(errors.length >= 2, 'socket.io-client retries by itself');
  polling.disconnect();

  // 2. connectChat connects.
  const plain = connectChat(serverUrl, fresh);
  await waitFor(plain, 'connect', 5000);
  plain.disconnect();

  // 3. An expired token at connect time: handleRefusals fetches a fresh one.
  let renewals = 0;
  const getFreshToken = async () => {
    renewals++;
    return fresh;
  };
  const fatal = [];
  const onFatal = (code, message) => fatal.push({ code, message });
  const renewing = connectChat(serverUrl, expired);
  handleRefusals(renewing, { getFreshToken, onFatal });
  await waitFor(renewing, 'connect', 5000);
  log('connected after renewing an expired token', { renewals });
  assert.equal(renewals, 1);
  renewing.disconnect();

  // 4. The token expires on a live connection: reconnect with a fresh one.
  const live = connectChat(serverUrl, shortLived);
  handleRefusals(live, { getFreshToken, onFatal });
  await waitFor(live, 'connect', 5000);
  const expiredErr = await waitFor(live, 'error', 10000);
  assert.equal(expiredErr.code, 'AUTH_EXPIRED');
  await waitFor(live, 'connect', 5000);
  log('reconnected after AUTH_EXPIRED on a live connection', { renewals });
  assert.equal(renewals, 2);
  assert.equal(live.auth.token, fresh);

  // 5. CONNECTION_LIMIT (3 per user) reaches onFatal; nothing retries it.
  const bobs = [1, 2, 3].map(() => connectChat(serverUrl, bob));
  await Promise.all(bobs.map((s) => waitFor(s, 'connect', 5000)));
  const fourth = connectChat(serverUrl, bob);
  handleRefusals(fourth, { getFreshToken, onFatal });
  await waitFor(fourth, 'connect_error', 5000);
  await sleep(300);
  log('fatal refusals', fatal);
  assert.deepEqual(fatal.map((f) => f.code), ['CONNECTION_LIMIT']);
  assert.equal(fourth.connected, false);
  fourth.disconnect();

  // 6. emitWithRetry: RATE_LIMITED is retried after retryAfterMs (node with
  // --limit-messages 2 --limit-window 2s), NOT_MEMBER is not.
  await addMembers('doc-c1', 'alice');
  const outgoing = [];
  live.onAnyOutgoing((event) => outgoing.push(event));
  const joined = await emitWithRetry(live, 'join_chat', { chatId: 'doc-c1' });
  assert.equal(joined.ok, true, JSON.stringify(joined));
  for (let i = 0; i < 3; i++) {
    const res = await emitWithRetry(live, 'send_message', { chatId: 'doc-c1', content: `m${i}`, messageType: 'TEXT', tempId: `t${i}` });
    assert.equal(res.ok, true, `send ${i}: ${JSON.stringify(res)}`);
  }
  const sends = outgoing.filter((e) => e === 'send_message').length;
  log('send_message emits for 3 messages', sends);
  assert.ok(sends > 3, 'the third message was rate limited and retried');
  outgoing.length = 0;
  const notMember = await emitWithRetry(live, 'join_chat', { chatId: 'doc-nobody' });
  assert.equal(notMember.ok, false);
  assert.equal(notMember.error.code, 'NOT_MEMBER');
  assert.equal(outgoing.length, 1, 'NOT_MEMBER is not retried');
  live.disconnect();
  bobs.forEach((s) => s.disconnect());
}, 30000);
