// Run by e2e/readme_steps_test.go inside the README's cluster steps: alice on
// the first node and bob on the third, with the tokens the steps printed
// (read from STEPS_LOG), join "general" and see each other's messages;
// /api/stats counts three nodes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, ack, assertOK, api, sleep } from './lib.mjs';

const tokens = readFileSync(env('STEPS_LOG'), 'utf8').match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) || [];

main(async () => {
  assert.equal(tokens.length, 2, 'the steps print two tokens (alice, bob)');
  const [aliceToken, bobToken] = tokens;
  const alice = io(URL + '/messenger', { transports: ['websocket'], auth: { token: aliceToken } });
  const bob = io(env('URL_B') + '/messenger', { transports: ['websocket'], auth: { token: bobToken } });
  await Promise.all([connected(alice), connected(bob)]);
  assertOK(await ack(alice, 'join_chat', { chatId: 'general' }), 'alice joins general');
  assertOK(await ack(bob, 'join_chat', { chatId: 'general' }), 'bob joins general');
  const atBob = waitFor(bob, 'new_message', 5000, (m) => m.tempId === 'a1');
  assertOK(await ack(alice, 'send_message', { chatId: 'general', content: 'hello from n1', messageType: 'TEXT', tempId: 'a1' }), 'alice sends');
  log('bob on n3 got', await atBob);
  const atAlice = waitFor(alice, 'new_message', 5000, (m) => m.tempId === 'b1');
  assertOK(await ack(bob, 'send_message', { chatId: 'general', content: 'hello from n3', messageType: 'TEXT', tempId: 'b1' }), 'bob sends');
  log('alice on n1 got', await atAlice);
  let nodes = 0; // a node counts once it has refreshed its presence (every 5 s)
  for (let i = 0; i < 40 && nodes !== 3; i++) {
    nodes = (await api('GET', '/api/stats')).body.cluster.nodes;
    if (nodes !== 3) await sleep(500);
  }
  assert.equal(nodes, 3, '/api/stats counts the three nodes');
  alice.disconnect();
  bob.disconnect();
});
