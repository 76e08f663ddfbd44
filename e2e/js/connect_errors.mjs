// Every CONNECT_ERROR code of PROTOCOL.md section 1 reaches socket.io-client as
// err.data.code, and the client does not retry by itself. Cases come from the
// Go test (CASES: [{ name, token, code }]); TOKEN_OK belongs to a user whose
// fourth connection must get CONNECTION_LIMIT.
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, env, main, log, connected, refused, sleep } from './lib.mjs';

const cases = JSON.parse(env('CASES'));
const okToken = env('TOKEN_OK');

main(async () => {
  const failures = [];
  for (const c of cases) {
    const token = c.token === null ? undefined : c.token;
    const socket = io(URL + '/messenger', { transports: ['websocket'], auth: { token } });
    try {
      const err = await refused(socket);
      log(`${c.name}: connect_error`, { message: err.message, data: err.data });
      assert.equal(err.data && err.data.code, c.code, `${c.name}: want ${c.code}, got ${JSON.stringify(err.data)}`);
      assert.equal(typeof err.message, 'string');
      await sleep(50);
      assert.equal(socket.active, false, `${c.name}: the client would retry by itself`);
    } catch (e) {
      failures.push(e.message);
      log(`${c.name}: FAILED`, e.message);
    } finally {
      socket.disconnect();
    }
  }

  // The per-user cap: three connections, the fourth is refused, and closing
  // one frees its slot at once.
  const conns = [];
  for (let i = 0; i < 3; i++) {
    const s = io(URL + '/messenger', { transports: ['websocket'], auth: { token: okToken } });
    conns.push(s);
    await connected(s);
    log(`connection ${i + 1} of the user`, s.id);
  }
  const fourth = io(URL + '/messenger', { transports: ['websocket'], auth: { token: okToken } });
  const err = await refused(fourth);
  log('fourth connection: connect_error', { message: err.message, data: err.data });
  assert.equal(err.data && err.data.code, 'CONNECTION_LIMIT');
  fourth.disconnect();

  conns[0].disconnect();
  await sleep(300);
  const fifth = io(URL + '/messenger', { transports: ['websocket'], auth: { token: okToken } });
  await connected(fifth);
  log('after closing one, a new connection', fifth.id);
  for (const s of [...conns, fifth]) s.disconnect();

  assert.deepEqual(failures, [], 'every refusal case');
});
