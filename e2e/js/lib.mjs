// Helpers shared by the scenario scripts. Each scenario's sockets are
// created with exactly the client code of PROTOCOL.md (by the scenario, or by
// joinedPair below):
//
//   io(URL + '/messenger', { transports: ['websocket'], auth: { token } })
//
// and runs under main(), which enforces a hard timeout, prints PASS or FAIL
// and sets the exit code the Go test checks.

import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

/** Reads a required environment variable. */
export function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`environment variable ${name} is not set`);
  return v;
}

export const URL = env('URL');
export const ADMIN_URL = env('ADMIN_URL');
export const API_KEY = env('API_KEY');

/** Prints one observation (the Go test logs it). */
export function log(what, ...data) {
  const parts = data.map((d) => (typeof d === 'string' ? d : JSON.stringify(d)));
  console.log(`[${(performance.now() / 1000).toFixed(3)}s] ${what}`, ...parts);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs fn with a hard timeout; exits 0 when it resolves, 1 when it throws, 3
 * on timeout (whatever the sockets are doing).
 */
export function main(fn, timeoutMs = 20000) {
  const timer = setTimeout(() => {
    console.error(`FAIL: hard timeout after ${timeoutMs} ms`);
    process.exit(3);
  }, timeoutMs);
  fn().then(
    () => {
      clearTimeout(timer);
      console.log('PASS');
      process.exit(0);
    },
    (err) => {
      clearTimeout(timer);
      console.error('FAIL:', err && err.stack ? err.stack : err);
      process.exit(1);
    },
  );
}

/**
 * Resolves with the first `event` on emitter whose payload satisfies pred
 * (the first argument, or all arguments when the event has several), or
 * rejects after ms.
 */
export function waitFor(emitter, event, ms = 3000, pred = () => true) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      const v = args.length > 1 ? args : args[0];
      if (!pred(v)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(v);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    emitter.on(event, onEvent);
  });
}

/** Records every payload of `event` on socket into the returned array. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (data) => seen.push(data));
  return seen;
}

/**
 * Resolves with { connected: true } on the socket's next connect or with
 * { error } on its next connect_error; rejects when neither comes within ms.
 */
function connectOutcome(socket, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`neither connect nor connect_error after ${ms} ms`));
    }, ms);
    const onConnect = () => {
      cleanup();
      resolve({ connected: true });
    };
    const onError = (error) => {
      cleanup();
      resolve({ error });
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** Resolves once socket is connected; rejects with the server's code on connect_error. */
export async function connected(socket, ms = 5000) {
  if (socket.connected) return socket;
  let out;
  try {
    out = await connectOutcome(socket, ms);
  } catch {
    throw new Error(`not connected after ${ms} ms`);
  }
  if (out.error) throw new Error(`connect_error: ${out.error.message} ${JSON.stringify(out.error.data)}`);
  return socket;
}

/** Resolves with the connect_error the server sends; rejects if the socket connects. */
export async function refused(socket, ms = 5000) {
  const out = await connectOutcome(socket, ms);
  if (out.connected) throw new Error('connected, but a refusal was expected');
  return out.error;
}

/** Emits with an acknowledgement and resolves with the ack's payload. */
export function ack(socket, event, data, ms = 3000) {
  return socket.timeout(ms).emitWithAck(event, data);
}

/** Asserts an ack is { ok: false, error: { code } } and returns the error. */
export function assertRefusal(res, code, what) {
  assert.equal(typeof res, 'object', `${what}: ack is not an object: ${JSON.stringify(res)}`);
  assert.equal(res.ok, false, `${what}: want ok:false, got ${JSON.stringify(res)}`);
  assert.equal(res.error && res.error.code, code, `${what}: want ${code}, got ${JSON.stringify(res)}`);
  assert.equal(typeof res.error.message, 'string', `${what}: error.message missing: ${JSON.stringify(res)}`);
  return res.error;
}

/** Asserts an ack is { ok: true, ... } and returns it. */
export function assertOK(res, what) {
  assert.equal(res && res.ok, true, `${what}: want ok:true, got ${JSON.stringify(res)}`);
  return res;
}

/** ISO 8601 UTC with milliseconds (PROTOCOL.md section 2). */
export const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Calls the server API; resolves with { status, body } (body parsed when JSON). */
export async function api(method, path, body, key = API_KEY) {
  const headers = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(ADMIN_URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // left as text: the caller's assertions say whether JSON was required
  }
  log(`${method} ${path} ->`, String(res.status), text.slice(0, 300));
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Makes alice and bob (TOKEN_ALICE, TOKEN_BOB) members of chatId, connects
 * both and has both join it; resolves with { alice, bob }.
 */
export async function joinedPair(chatId) {
  await addMembers(chatId, 'alice', 'bob');
  const alice = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_ALICE') } });
  const bob = io(URL + '/messenger', { transports: ['websocket'], auth: { token: env('TOKEN_BOB') } });
  await Promise.all([connected(alice), connected(bob)]);
  assertOK(await ack(alice, 'join_chat', { chatId }), 'alice join_chat');
  assertOK(await ack(bob, 'join_chat', { chatId }), 'bob join_chat');
  return { alice, bob };
}

/** Adds members to a chat through the server API and asserts success. */
export async function addMembers(chatId, ...users) {
  for (const u of users) {
    const r = await api('PUT', `/api/chats/${encodeURIComponent(chatId)}/members/${encodeURIComponent(u)}`);
    assert.ok(r.status >= 200 && r.status < 300, `add ${u} to ${chatId}: status ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/** Resolves true if `event` arrives within ms, false otherwise. */
export async function arrives(socket, event, ms, pred = () => true) {
  try {
    await waitFor(socket, event, ms, pred);
    return true;
  } catch {
    return false;
  }
}

/** Disconnects every socket given (closing their managers). */
export function closeAll(...sockets) {
  for (const s of sockets) {
    if (s) s.disconnect();
  }
}

/** Resolves with { reason, details } on the socket's next disconnect. */
export function disconnected(socket, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('disconnect', on);
      reject(new Error(`no disconnect within ${ms} ms`));
    }, ms);
    const on = (reason, details) => {
      clearTimeout(timer);
      socket.off('disconnect', on);
      resolve({ reason, details });
    };
    socket.on('disconnect', on);
  });
}
