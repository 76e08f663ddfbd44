// RTM scenarios' clients (driven by e2e/rtm_test.go): connects every client
// of CLIENTS (JSON [{ name, url, token }]) with exactly the client code of
// PROTOCOL.md, prints @READY (steps.mjs) once all are connected, then one
// line per event a client receives:
//
//   EV {"client":"a1","event":"message_toast","data":{...}}
//
// (connect, disconnect and connect_error included, so the test sees a node
// going away). The Go test drives the cluster and the provider and checks
// what arrived; it closes stdin to end the run (every socket disconnects,
// exit 0).
import { io } from 'socket.io-client';
import { env, main, log, connected } from './lib.mjs';
import { mark, stdinClosed } from './steps.mjs';

const clients = JSON.parse(env('CLIENTS'));

function emitLine(client, event, data) {
  process.stdout.write('EV ' + JSON.stringify({ client, event, data: data === undefined ? null : data }) + '\n');
}

main(async () => {
  const sockets = clients.map((c) => {
    const socket = io(c.url + '/messenger', { transports: ['websocket'], auth: { token: c.token } });
    socket.onAny((event, ...args) => emitLine(c.name, event, args[0]));
    socket.on('connect', () => emitLine(c.name, 'connect'));
    socket.on('disconnect', (reason) => emitLine(c.name, 'disconnect', reason));
    socket.on('connect_error', (err) => emitLine(c.name, 'connect_error', { message: err.message, data: err.data }));
    return socket;
  });
  await Promise.all(sockets.map((s) => connected(s, 10000)));
  log('all clients connected', clients.map((c) => c.name));
  mark('READY');

  // Run until the test closes stdin.
  await stdinClosed;
  sockets.forEach((s) => s.disconnect());
}, Number(process.env.HARD_TIMEOUT_MS || 55000));
