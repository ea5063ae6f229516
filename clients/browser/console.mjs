// The operator console in a real browser (Debian's chromium, headless,
// driven by Playwright): an admin signs in through the OpenID Provider,
// sees an order made through the API appear in the list and change state
// live, cancels another in the console and sees its stock come back; a
// customer sees only their own orders and is refused another's; sign-out
// ends the session. axe-core checks every page (no serious or critical
// violations) and a screenshot of each page at 1280 and 390 px is written
// under a temporary directory, its path printed.
//
// usage: node console.mjs <base URL> <admin email> <admin password> [chromium]

import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, adminEmail, adminPassword, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!adminPassword) {
  console.error('usage: node console.mjs <base URL> <admin email> <admin password> [chromium]');
  process.exit(2);
}
const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const shots = mkdtempSync(join(tmpdir(), 'oms-console-'));
const run = Date.now().toString(36);

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

// The public API, as any client calls it.
async function api(method, path, token, body, headers = {}) {
  const reply = await fetch(`${base}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await reply.text();
  check(reply.ok, `${method} ${path}: ${reply.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
const login = async (email, password) =>
  (await api('POST', '/v1/auth/login', null, { email, password })).accessToken;
async function customer(name) {
  const email = `${name}-${run}@example.com`;
  const password = `${name} console password`;
  await api('POST', '/v1/auth/register', null, { email, password, displayName: name });
  return { email, password, token: await login(email, password) };
}
const order = async (who, productId, quantity, key) =>
  (
    await api('POST', '/v1/orders', who.token, { lines: [{ productId, quantity }] }, {
      'idempotency-key': key,
    })
  ).order;
const available = async (productId) =>
  Number((await api('GET', `/v1/products/${productId}`)).product.stockAvailable);

const admin = await login(adminEmail, adminPassword);
const product = (
  await api('POST', '/v1/products', admin, {
    sku: `CONSOLE-${run}`,
    name: 'Console mug',
    price: { currencyCode: 'USD', amountMinor: 1250 },
    stockOnHand: 20,
  })
).product;
const alice = await customer('alice');
const bob = await customer('bob');

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

// axe-core is injected past the page's CSP (which allows only our own
// script): the context bypasses CSP for the check alone.
async function accessible(page, name) {
  await page.addScriptTag({ path: axeSource });
  const result = await page.evaluate(async () => window.axe.run(document));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(
    bad.length === 0,
    `${name}: axe-core found ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target).join(' ')}`).join('; ')}`,
  );
  console.log(`console: ${name}: axe-core, no serious or critical violations (${result.passes.length} rules passed)`);
}

async function screenshots(page, name) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const path = join(shots, `${name}-${width}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`console: screenshot ${path}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function signIn(page, email, password) {
  await page.goto(`${base}/console/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/console/orders`);
}

const row = (page, id) => page.locator(`tr[data-order-id="${id}"]`);

try {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  await accessible(page, 'home');
  await screenshots(page, 'home');
  await signIn(page, adminEmail, adminPassword);
  check((await page.getByRole('heading', { level: 1 }).textContent()) === 'Orders', 'the orders page');
  await accessible(page, 'orders');

  // An order made through the API appears, CONFIRMED, without a reload.
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const first = await order(alice, product.id, 2, `console-${run}-1`);
  await row(page, first.id).waitFor({ timeout: 15_000 });
  check(
    (await row(page, first.id).locator('.badge').textContent()) === 'CONFIRMED',
    'the new order is CONFIRMED',
  );
  // Shipped through the API: the row turns SHIPPED live (WatchOrder).
  await api('POST', `/v1/orders/${first.id}:updateStatus`, admin, { status: 'ORDER_STATUS_SHIPPED' });
  await row(page, first.id).locator('.badge', { hasText: 'SHIPPED' }).waitFor({ timeout: 15_000 });
  check(await page.evaluate(() => window.notReloaded === true), 'the list was not reloaded');
  console.log('console: an API order appeared in the list and turned SHIPPED live');
  await screenshots(page, 'orders');

  // Cancelled in the console, with a confirmation: its stock comes back.
  const second = await order(alice, product.id, 3, `console-${run}-2`);
  const before = await available(product.id);
  await page.goto(`${base}/console/orders/${second.id}`);
  await accessible(page, 'order');
  await screenshots(page, 'order');
  await page.getByText('Cancel this order…').click();
  await page.getByLabel('Reason').fill('customer asked by phone');
  await page.getByRole('button', { name: 'Yes, cancel the order' }).click();
  await page.getByText('The order is cancelled and its stock returned.').waitFor();
  check((await page.locator('dd[data-field="status"] .badge').textContent()) === 'CANCELLED', 'CANCELLED');
  const after = await available(product.id);
  check(after === before + 3, `stock available ${before} -> ${after}, expected +3`);
  console.log(`console: cancelled in the console; available stock ${before} -> ${after}`);

  // A filter: only cancelled orders.
  await page.goto(`${base}/console/orders`);
  await page.getByLabel('Status').selectOption('CANCELLED');
  await page.getByRole('button', { name: 'Filter' }).click();
  await row(page, second.id).waitFor();
  check((await row(page, first.id).count()) === 0, 'the filter left the shipped order out');

  // Sign out: the provider's session ends too.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/console/`);
  await page.goto(`${base}/console/orders`);
  check(await page.getByLabel('Password').isVisible(), 'signed out: the sign-in page again');
  console.log('console: sign-out ended the session');
  await context.close();

  // A customer sees their own orders only, and is refused another's.
  const bobsOrder = await order(bob, product.id, 1, `console-${run}-3`);
  const customerContext = await browser.newContext({ bypassCSP: true });
  const customerPage = await customerContext.newPage();
  await signIn(customerPage, bob.email, bob.password);
  await row(customerPage, bobsOrder.id).waitFor();
  check((await row(customerPage, first.id).count()) === 0, "a customer sees another's order");
  check((await customerPage.getByLabel('Customer ID').count()) === 0, 'a customer gets no customer filter');
  const refused = await customerPage.goto(`${base}/console/orders/${first.id}`);
  check(refused.status() === 404, `another's order answered ${refused.status()}`);
  const message = await customerPage.getByRole('alert').textContent();
  check(/not found/i.test(message), `the refusal says why: ${message}`);
  await accessible(customerPage, 'refused');
  await screenshots(customerPage, 'refused');
  console.log(`console: a customer sees only their own orders; another's: 404 "${message.trim()}"`);
  await customerContext.close();
} finally {
  await browser.close();
}
console.log(`console: all checks passed; screenshots in ${shots}`);
