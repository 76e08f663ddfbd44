// Run by e2e/readme_steps_test.go inside the README's RTM steps: op1, with
// the token the steps printed (the last one in STEPS_LOG: the dev banner
// prints alice's before), receives p1's generated events from rtmsim; p1's
// state arrives right after connecting (p2 has no session, so no state);
// /api/stats lists p1.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { URL, env, main, log, waitFor, connected, api, ISO_MS } from './lib.mjs';

const tokens = readFileSync(env('STEPS_LOG'), 'utf8').match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) || [];

main(async () => {
  const token = tokens.at(-1);
  assert.ok(token, 'the steps print a token');
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  assert.equal(claims.sub, 'op1');
  assert.deepEqual(claims.profiles, ['p1', 'p2']);
  const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
  const toast = waitFor(socket, 'message_toast', 20000, (t) => t.profileId === 'p1');
  const statuses = [];
  socket.on('rtm_status', (s) => statuses.push(s));
  await connected(socket);
  log('p1 toast', await toast);
  log('rtm_status', statuses);
  assert.deepEqual(statuses[0], { profileId: 'p1', state: 'connected' }, 'the current state first');
  assert.ok(!statuses.some((s) => s.profileId === 'p2'), 'no state for a profile without a session');
  const st = await api('GET', '/api/stats?limit=10');
  assert.equal(st.status, 200);
  const p1 = st.body.rtm.profileList.find((p) => p.profileId === 'p1');
  assert.equal(p1.state, 'connected');
  assert.match(p1.lastEventAt, ISO_MS, 'the generated events show');
  socket.disconnect();
}, 30000);
