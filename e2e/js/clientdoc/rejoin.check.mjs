// Checks the "rejoin" snippet of docs/CLIENT.md (the Go test prepends the
// "connect" and "rejoin" snippets): keepChat re-joins on every connect with
// the last eventId and merges missed, each event once and in order; when the
// gap is older than the retained history (node with --history-size 3) onGap
// is called.
import assert from 'node:assert/strict';
import { URL, env, main, log, waitFor, sleep, addMembers } from '../lib.mjs';

const serverUrl = URL;

main(async () => {
  await addMembers('doc-c2', 'alice', 'bob');
  const alice = connectChat(serverUrl, env('TOKEN_ALICE'));
  const bob = connectChat(serverUrl, env('TOKEN_BOB'));
  const seen = [];
  const gaps = [];
  const aliceJoined = waitFor(alice, 'chat_joined', 5000);
  keepChat(alice, 'doc-c2', {
    onEvent: (event, data) => seen.push({ event, tempId: data.tempId, eventId: data.eventId }),
    onGap: (chatId) => gaps.push(chatId),
    onJoinError: (e) => assert.fail(`join failed: ${JSON.stringify(e)}`),
  });
  await waitFor(bob, 'connect', 5000);
  const j = await bob.timeout(5000).emitWithAck('join_chat', { chatId: 'doc-c2' });
  assert.equal(j.ok, true);
  await aliceJoined;
  const send = async (tempId) => {
    const r = await bob.timeout(5000).emitWithAck('send_message', { chatId: 'doc-c2', content: tempId, messageType: 'TEXT', tempId });
    assert.equal(r.ok, true, JSON.stringify(r));
  };
  const until = async (tempId) => {
    for (let i = 0; i < 100 && !seen.some((s) => s.tempId === tempId); i++) await sleep(50);
    assert.ok(seen.some((s) => s.tempId === tempId), `alice got ${tempId}`);
  };

  await send('m1');
  await until('m1');
  alice.disconnect();
  await send('m2');
  await send('m3');
  alice.connect();
  await until('m3');
  await send('m4');
  await until('m4');
  await sleep(300);
  log('alice saw', seen.map((s) => s.tempId));
  assert.deepEqual(seen.map((s) => s.tempId), ['m1', 'm2', 'm3', 'm4'], 'each once, in order');
  assert.deepEqual(gaps, []);

  // More missed than the node keeps (3): onGap, and the newest are merged.
  alice.disconnect();
  for (const id of ['g1', 'g2', 'g3', 'g4', 'g5']) await send(id);
  alice.connect();
  await until('g5');
  await sleep(300);
  log('after a long gap alice saw', seen.map((s) => s.tempId), 'gaps', gaps);
  assert.deepEqual(gaps, ['doc-c2']);
  assert.deepEqual(seen.slice(4).map((s) => s.tempId), ['g3', 'g4', 'g5'], 'the retained newest, once');
  alice.disconnect();
  bob.disconnect();
});
