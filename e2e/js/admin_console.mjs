// The admin console in Debian's chromium, driven by puppeteer-core, against
// a three-node cluster: log in, see the nodes, look up alice and disconnect
// her (her socket.io-client sees the disconnect, the page why), add bob to a chat and post
// a system message (his client gets it), store an RTM session, read the
// live events, and in the test console connect as a user of profile P1 and
// see a new_message and an RTM message_toast as toasts that close after 5 s;
// last, send bob a user event and remove him from the chat.
// A screenshot of each page goes to SCREENSHOT_DIR. Any console error or
// page error fails the scenario.

import assert from 'node:assert/strict';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { io } from 'socket.io-client';
import { ADMIN_URL, API_KEY, env, log, main, waitFor, connected, ack, assertOK, sleep } from './lib.mjs';

const N2_URL = env('N2_URL');
const N3_URL = env('N3_URL');
const N2_ID = env('N2_ID');
const SIM_URL = env('SIM_URL');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = env('CHROMIUM');
const XSS = '<img src=x onerror=alert(1)> maintenance at 22:00';

main(async () => {
  const opts = (token) => ({ transports: ['websocket'], auth: { token }, reconnection: false });
  const alice = io(N2_URL + '/messenger', opts(env('ALICE_TOKEN')));
  const bob = io(N3_URL + '/messenger', opts(env('BOB_TOKEN')));
  await Promise.all([connected(alice), connected(bob)]);
  assertOK(await ack(bob, 'join_chat', { chatId: 'ops' }), 'bob joins ops');
  log('alice on n2 and bob on n3 connected');

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const problems = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push('console error: ' + m.text());
    });
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('requestfailed', (r) => {
      // The test console's socket closes when the browser does: not a failure.
      if (!r.url().includes('/socket.io/')) problems.push('request failed: ' + r.url() + ' ' + (r.failure() || {}).errorText);
    });
    page.on('dialog', (d) => {
      log('confirm:', d.message());
      d.accept();
    });
    const shot = async (name) => {
      await page.screenshot({ path: path.join(SHOTS, name + '.png') });
      log('screenshot', name);
    };
    const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
    const setValue = (sel, v) => page.$eval(sel, (e, v) => { e.value = v; }, v);
    const textOf = (sel) => page.$eval(sel, (e) => e.textContent);

    // Log in.
    const resp = await page.goto(ADMIN_URL + '/admin/', { waitUntil: 'load' });
    assert.match(resp.headers()['content-security-policy'] || '', /script-src 'self'/);
    // WebSockets to this node's public listener only: no scheme-wide ws:/wss: source.
    assert.match(resp.headers()['content-security-policy'], /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+;/);
    await page.type('#login-key', API_KEY);
    await page.click('#login-form button[type=submit]');

    // Cluster: three nodes, live.
    await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr').length === 3, { timeout: 15000 });
    const nodes = await page.$$eval('#nodes-table tbody tr', (rows) => rows.map((r) => r.dataset.node));
    log('nodes', nodes);
    assert.ok(nodes.includes(N2_ID), `cluster lists ${N2_ID}: ${nodes}`);
    const updated = await textOf('#cluster-updated');
    await page.waitForFunction((u) => document.getElementById('cluster-updated').textContent !== u, { timeout: 5000 }, updated);
    await shot('cluster');

    // User: alice's connection on n2; disconnect it.
    await go('#user');
    await setValue('#user-id', 'alice');
    await page.click('#user-form button[type=submit]');
    await page.waitForSelector('#user-table tbody tr[data-conn]', { timeout: 10000 });
    const row = await textOf('#user-table tbody tr[data-conn]');
    assert.ok(row.includes(N2_ID), `alice's connection is on ${N2_ID}: ${row}`);
    const gone = waitFor(alice, 'disconnect', 10000);
    await page.click('#user-table button[data-action=disconnect]');
    const got = await gone; // (reason, details)
    const reason = Array.isArray(got) ? got[0] : got;
    log('alice disconnect:', reason);
    assert.equal(reason, 'io server disconnect');
    // The page looks her up again: no connection left, and n2 says why.
    await page.waitForFunction(() => [...document.querySelectorAll('#user-events td')].some((td) => td.textContent === 'admin_disconnect'), { timeout: 10000 });
    await shot('user');

    // Chat: add bob, post a system message; bob's client gets it, the page
    // shows it as text.
    await go('#chat');
    await setValue('#chat-id', 'ops');
    await page.click('#chat-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('chat-member-count').textContent !== '', { timeout: 10000 });
    await setValue('#chat-add-user', 'bob');
    await page.click('#chat-add-form button[type=submit]');
    await page.waitForFunction(() => [...document.querySelectorAll('#chat-online li')].some((li) => li.textContent.startsWith('bob')), { timeout: 10000 });
    const arrived = waitFor(bob, 'new_message', 10000, (m) => m.senderId === 'system');
    await setValue('#chat-post-content', XSS);
    await page.click('#chat-post-form button[type=submit]');
    const msg = await arrived;
    log('bob got', msg);
    assert.equal(msg.content, XSS);
    await page.waitForFunction((x) => [...document.querySelectorAll('#chat-history td')].some((td) => td.textContent === x), { timeout: 10000 }, XSS);
    assert.equal(await page.$$eval('#chat-history img', (imgs) => imgs.length), 0, 'message content rendered as HTML');
    await shot('chat');

    // RTM: store P1's session; the bridge connects it.
    await go('#rtm');
    await setValue('#rtm-profile', 'P1');
    await setValue('#rtm-session', '{"cookies":{"sid":"p1-console"}}');
    await page.click('#rtm-form button[type=submit]');
    await page.waitForFunction(() => {
      const r = document.querySelector('#rtm-profiles tr[data-profile="P1"]');
      return r && r.textContent.includes('connected');
    }, { timeout: 15000 });
    await shot('rtm');

    // Live events of n2, read through n1: alice's admin disconnect.
    await go('#events');
    await page.waitForFunction((id) => [...document.querySelectorAll('#events-node option')].some((o) => o.value === id), { timeout: 5000 }, N2_ID);
    await page.select('#events-node', N2_ID);
    await page.waitForFunction(() => [...document.querySelectorAll('#events-table tbody tr')].some((r) => r.textContent.includes('admin_disconnect') && r.textContent.includes('alice')), { timeout: 10000 });
    await shot('events');

    // Test console: a minted token for a P1 user; join ops; bob's message and
    // an RTM MessageSent for P1 show as toasts, which close after 5 s.
    await go('#test');
    await page.waitForFunction(() => document.getElementById('test-url').value !== '', { timeout: 5000 });
    await setValue('#test-user', 'tester');
    await setValue('#test-profiles', 'P1');
    await page.click('#test-mint');
    await page.waitForFunction(() => document.getElementById('test-token').value !== '', { timeout: 5000 });
    // A URL the policy does not allow is refused by the page, not attempted
    // (the browser would log a console error, which fails this test).
    const ownURL = await page.$eval('#test-url', (e) => e.value);
    await setValue('#test-url', 'http://127.0.0.1:1');
    await page.click('#test-connect');
    await page.waitForFunction(() => document.getElementById('status').textContent.includes('Content-Security-Policy'), { timeout: 5000 });
    await setValue('#test-url', ownURL);
    await page.click('#test-connect');
    await page.waitForFunction(() => document.getElementById('test-state').textContent === 'connected', { timeout: 10000 });
    await setValue('#test-chat', 'ops');
    await page.click('#test-join-form button[type=submit]');
    await page.waitForFunction(() => [...document.querySelectorAll('#test-log li')].some((li) => li.textContent.includes('join_chat ack {"ok":true')), { timeout: 10000 });
    assertOK(await ack(bob, 'send_message', { chatId: 'ops', content: 'hi console', messageType: 'TEXT', tempId: 'b1' }), 'bob sends');
    await page.waitForFunction(() => [...document.querySelectorAll('.toast.msg')].some((t) => t.textContent.includes('hi console')), { timeout: 10000 });

    let emitted = false;
    for (let i = 0; i < 50 && !emitted; i++) {
      const r = await fetch(SIM_URL + '/control/emit', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ profileId: 'P1', type: 'MessageSent', id: 'console-1', data: { dialogId: 'd1', messageId: 'm-console', fromId: 'u7', text: 'toast from RTM' } }),
      });
      emitted = r.status === 200;
      if (!emitted) await sleep(200);
    }
    assert.ok(emitted, 'rtmsim had no open P1 connection');
    await page.waitForFunction(() => [...document.querySelectorAll('.toast.rtm')].some((t) => t.textContent.includes('toast from RTM')), { timeout: 10000 });
    const shownAt = Date.now();
    await shot('test-console');
    await page.waitForFunction(() => document.querySelectorAll('.toast.rtm').length === 0, { timeout: 9000, polling: 100 });
    const shownFor = Date.now() - shownAt;
    log(`the RTM toast closed ${shownFor} ms after it was seen`);
    assert.ok(shownFor < 8000, 'the toast stayed');

    // Act on bob: a user event reaches his client; removing him from ops
    // makes his client leave it.
    await go('#user');
    await setValue('#user-id', 'bob');
    await page.click('#user-form button[type=submit]');
    await page.waitForSelector('#user-table tbody tr[data-conn]', { timeout: 10000 });
    const notice = waitFor(bob, 'maintenance', 10000);
    await setValue('#user-event-name', 'maintenance');
    await setValue('#user-event-data', '{"at":"22:00"}');
    await page.click('#user-event-form button[type=submit]');
    assert.deepEqual(await notice, { at: '22:00' });
    await go('#chat');
    await setValue('#chat-id', 'ops');
    await page.click('#chat-form button[type=submit]');
    await page.waitForSelector('#chat-members button[data-action=remove]', { timeout: 10000 });
    const left = waitFor(bob, 'chat_left', 10000);
    // The list shown from the earlier visit may be replaced by the new one
    // between finding the button and clicking it: find and click in one step.
    await page.$eval('#chat-members button[data-action=remove]', (b) => b.click());
    assert.equal((await left).chatId, 'ops');
    log('bob got the user event and left ops when removed');
  } finally {
    await browser.close();
    alice.close();
    bob.close();
  }
  assert.deepEqual(problems, [], 'the page reported errors');
}, 38000);
