// Run by e2e/readme_steps_test.go inside the README's RTM steps: op1, with
// the token the steps printed (the last one in STEPS_LOG: the dev banner
// prints alice's before), receives p1's generated events from rtmsim.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected } from './lib.mjs';

const tokens = readFileSync(env('STEPS_LOG'), 'utf8').match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) || [];

main(async () => {
  const token = tokens.at(-1);
  assert.ok(token, 'the steps print a token');
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.equal(claims.sub, 'op1');
  assert.deepEqual(claims.profiles, ['p1', 'p2']);
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  const toast = waitFor(socket, 'message_toast', 20000, (t) => t.profileId === 'p1');
  await connected(socket);
  log('p1 toast', await toast);
  socket.disconnect();
}, 30000);
