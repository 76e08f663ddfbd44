// Redis restart mid-traffic, driven by redis_outage_test.go (see
// steps.mjs). Members of chat "out" are spread over three nodes
// (URL, URL2, URL3; TOKENS is a JSON list of [name, node index, token]); the
// sender (SENDER_TOKEN, node 1, a member too) sends a message with an ack
// every 20 ms.
//
//   @SENDING    everyone joined, the baseline arrived everywhere, and the
//               sender has 20 messages acked
//   STOP     -> the sender stops; the script waits (up to 10 s) until every
//               member has every acked message, writes what it observed to
//               SUMMARY (JSON, times in ms since the epoch)
//   @SUMMARY
//   EXIT     -> the sockets close and the script ends
//
// The Go test makes the assertions; this script fails only when the setup
// before @SENDING does not work.
import { io } from 'socket.io-client';
import { writeFileSync } from 'node:fs';
import { URL, env, main, log, sleep, connected, ack, assertOK } from './lib.mjs';
import { mark, command, until } from './steps.mjs';

const URLS = [URL, env('URL2'), env('URL3')];
const CHAT = 'out';

function client(name, node, token) {
  const c = { name, node, received: [], disconnects: [], connectErrors: [] };
  c.socket = io(URLS[node] + '/messenger', { transports: ['websocket'], auth: { token } });
  c.socket.on('new_message', (m) => {
    if (m.chatId === CHAT) c.received.push(m.eventId);
  });
  c.socket.on('disconnect', (reason, details) => {
    c.disconnects.push({ t: Date.now(), reason, description: details && String(details.description) });
  });
  c.socket.on('connect_error', (err) => c.connectErrors.push({ t: Date.now(), message: err.message, data: err.data }));
  return c;
}

main(async () => {
  const members = JSON.parse(env('TOKENS')).map(([name, node, token]) => client(name, node, token));
  const sender = client('sender', 0, env('SENDER_TOKEN'));
  const all = [sender, ...members];
  await Promise.all(all.map((c) => connected(c.socket, 10000)));
  for (const c of all) assertOK(await ack(c.socket, 'join_chat', { chatId: CHAT }, 5000), `${c.name} joins on node ${c.node + 1}`);

  const acked = []; // { tempId, eventId, t, at }
  const failed = []; // { tempId, t, at, code?, error? }
  const send = async (tempId) => {
    const t = Date.now();
    let res;
    try {
      res = await ack(sender.socket, 'send_message', { chatId: CHAT, content: tempId, messageType: 'TEXT', tempId }, 4000);
    } catch (err) {
      failed.push({ tempId, t, at: Date.now(), error: String(err) });
      return null;
    }
    if (res && res.ok === true) {
      acked.push({ tempId, eventId: res.eventId, t, at: Date.now() });
      return res;
    }
    failed.push({ tempId, t, at: Date.now(), code: res && res.error && res.error.code, res });
    return null;
  };

  const base = assertOK(await send('baseline'), 'baseline message');
  if (!(await until(() => all.every((c) => c.received.includes(base.eventId)), 5000))) {
    throw new Error('the baseline message did not reach every member within 5 s');
  }
  let stop = false;
  const pending = [];
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      pending.push(send(`m-${i}`));
      await sleep(20);
    }
    await Promise.all(pending);
  })();
  if (!(await until(() => acked.length >= 21, 5000))) throw new Error('20 messages were not acked within 5 s');
  mark('SENDING');

  await command('STOP');
  stop = true;
  await loop;
  log(`sender stopped: ${acked.length} acked, ${failed.length} failed`);
  const settled = await until(() => all.every((c) => acked.every((a) => c.received.includes(a.eventId))), 10000);
  log(settled ? 'every member has every acked message' : 'NOT every member has every acked message after 10 s');
  await sleep(300); // a late duplicate would arrive by now
  const summary = {
    settled,
    acked,
    failed,
    clients: all.map((c) => ({
      name: c.name,
      node: c.node,
      connected: c.socket.connected,
      received: c.received,
      disconnects: c.disconnects,
      connectErrors: c.connectErrors,
    })),
  };
  writeFileSync(env('SUMMARY'), JSON.stringify(summary));
  mark('SUMMARY');
  await command('EXIT');
  all.forEach((c) => c.socket.disconnect());
}, 80000);
