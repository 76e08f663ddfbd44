// Checks the "rtm" snippet of docs/CLIENT.md (the Go test prepends the
// "connect" and "rtm" snippets) against a node bridged to rtmsim (SIM_URL):
// showStatus follows the profile's state, one socket gets toasts of every
// profile in its token, a toast is shown once, and another profile's toasts
// never arrive; a socket that connects later gets each of its profiles'
// current state right after connecting.
import assert from 'node:assert/strict';
import { URL, env, main, log, sleep, api } from '../lib.mjs';

const serverUrl = URL;
const SIM_URL = env('SIM_URL');

async function emit(profileId, id, fromId = 'u7') {
  const data = { dialogId: 'd1', messageId: id, fromId, text: 'hello ' + id, createdAt: new Date().toISOString() };
  for (let i = 0; i < 100; i++) {
    const res = await fetch(SIM_URL + '/control/emit', { method: 'POST', body: JSON.stringify({ profileId, type: 'MessageSent', id, data }) });
    if (res.status === 200) return;
    await sleep(50); // 409: the profile's upstream connection is not open yet
  }
  assert.fail(`rtmsim never had a ${profileId} connection open`);
}

async function eventually(what, cond) {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(50);
  assert.ok(cond(), what);
}

main(async () => {
  const socket = connectChat(serverUrl, env('TOKEN_OPERATOR')); // profiles p1, p2
  const toasts = [];
  const statuses = [];
  const states = watchProfiles(socket, {
    showToast: (t) => toasts.push(t),
    showStatus: (profileId, state) => statuses.push(`${profileId}:${state}`),
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const p of ['p1', 'p2', 'p3']) {
    const r = await api('PUT', `/api/rtm/profiles/${p}`, { session: { cookies: { sid: 's-' + p } } });
    assert.equal(r.status, 200);
  }
  await eventually('p1 and p2 connected', () => states.get('p1') === 'connected' && states.get('p2') === 'connected');
  await emit('p1', 'ev-1');
  await emit('p2', 'ev-2');
  await emit('p1', 'ev-1'); // the same upstream event again
  await emit('p3', 'ev-3'); // not this user's profile
  await eventually('two toasts', () => toasts.length >= 2);
  await sleep(500);
  log('statuses', statuses, 'toasts', toasts);
  assert.deepEqual(toasts.map((t) => `${t.profileId}/${t.messageId}`).sort(), ['p1/ev-1', 'p2/ev-2']);
  assert.equal(toasts[0].text.startsWith('hello '), true);
  assert.ok(!statuses.some((s) => s.startsWith('p3:')), 'no status of a profile not in the token');

  // A later socket learns the current states at once, with no change to wait for.
  const later = connectChat(serverUrl, env('TOKEN_OPERATOR'));
  const laterStatuses = [];
  const laterStates = watchProfiles(later, { showToast: () => {}, showStatus: (p, s) => laterStatuses.push(`${p}:${s}`) });
  await new Promise((resolve) => later.once('connect', resolve));
  await eventually('the later socket has both states', () => laterStates.size === 2);
  await sleep(300);
  log('later socket statuses', laterStatuses);
  assert.deepEqual(laterStatuses.sort(), ['p1:connected', 'p2:connected']);
  later.disconnect();
  socket.disconnect();
});
