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

import { mkdtempSync, writeFileSync } from 'node:fs';
import { crc32, deflateSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, adminEmail, adminPassword, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!adminPassword) {
  console.error('usage: node console.mjs <base URL> <admin email> <admin password> [chromium]');
  process.exit(2);
}
// A small PNG of one colour, made here (no fixture file).
function png(size, [r, g, b]) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3).map((_, i) => [r, g, b][i % 3])]);
  const pixels = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
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

async function signIn(page, email, password, check = false) {
  await page.goto(`${base}/console/`);
  await page.getByRole('link', { name: 'Sign in' }).click();
  if (check) {
    await accessible(page, 'sign-in');
    await screenshots(page, 'sign-in');
  }
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
  await signIn(page, adminEmail, adminPassword, true);
  check((await page.getByRole('heading', { level: 1 }).textContent()) === 'Orders', 'the orders page');

  // The keyboard alone: the skip link comes first and leads to the
  // content; every focused control shows where focus is; a filter is
  // chosen and sent without the mouse.
  await page.keyboard.press('Tab');
  check(
    (await page.evaluate(() => document.activeElement.textContent)) === 'Skip to content',
    'the first Tab reaches the skip link',
  );
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== 'none', `focus is visible (outline ${outline})`);
  await page.keyboard.press('Enter');
  await page.getByLabel('Status').focus();
  await page.keyboard.press('ArrowDown');
  for (let i = 0; i < 20; i += 1) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement.textContent)) === 'Filter') {
      break;
    }
  }
  await page.keyboard.press('Enter');
  await page.waitForURL(/status=PENDING/);
  await page.goto(`${base}/console/orders`);
  console.log('console: reached and used the filters with the keyboard alone');
  await accessible(page, 'orders');

  // An order made through the API is announced without a reload, shown
  // on request, CONFIRMED; nothing on the page moved by itself (layout
  // shifts not caused by the viewer's input are summed, as CLS counts them).
  await page.evaluate(() => {
    window.notReloaded = true;
    window.shifted = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (!entry.hadRecentInput) {
          window.shifted += entry.value;
        }
      }
    }).observe({ type: 'layout-shift' });
  });
  const first = await order(alice, product.id, 2, `console-${run}-1`);
  await page.getByRole('button', { name: 'Show 1 new order' }).click({ timeout: 15_000 });
  await row(page, first.id).waitFor();
  check(
    (await row(page, first.id).locator('.badge').textContent()) === 'CONFIRMED',
    'the new order is CONFIRMED',
  );
  // Shipped through the API: the row turns SHIPPED live (WatchOrder).
  await api('POST', `/v1/orders/${first.id}:updateStatus`, admin, { status: 'ORDER_STATUS_SHIPPED' });
  await row(page, first.id).locator('.badge', { hasText: 'SHIPPED' }).waitFor({ timeout: 15_000 });
  check(await page.evaluate(() => window.notReloaded === true), 'the list was not reloaded');
  const shifted = await page.evaluate(() => window.shifted);
  check(shifted < 0.01, `live updates moved the layout (shift score ${shifted})`);
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
  const timeline = await page.locator('ol.timeline').innerText();
  check(
    /placed/.test(timeline) && /confirmed/.test(timeline) && /cancelled — customer asked by phone/.test(timeline),
    `the timeline: ${timeline}`,
  );
  const after = await available(product.id);
  check(after === before + 3, `stock available ${before} -> ${after}, expected +3`);
  console.log(`console: cancelled in the console; available stock ${before} -> ${after}`);
  await page.goto(`${base}/console/products/${product.id}`);
  const shown = await page.locator('dl.facts dt:has-text("Available") + dd').innerText();
  check(Number.parseInt(shown, 10) === after, `the product page shows ${shown} available, the API ${after}`);

  // A filter: only cancelled orders.
  await page.goto(`${base}/console/orders`);
  await page.getByLabel('Status').selectOption('CANCELLED');
  await page.getByRole('button', { name: 'Filter' }).click();
  await row(page, second.id).waitFor();
  check((await row(page, first.id).count()) === 0, 'the filter left the shipped order out');

  // Products: the list, then one product. A new price adds a point to the
  // chart; a stock adjustment shows; an image uploads with its progress
  // and its thumbnail appears.
  await page.getByRole('link', { name: 'Products' }).click();
  await page.getByLabel('Name or SKU contains').fill(`CONSOLE-${run}`);
  await page.getByRole('button', { name: 'Search' }).click();
  await accessible(page, 'products');
  await screenshots(page, 'products');
  await page.getByRole('link', { name: 'Console mug' }).click();
  const priceChart = page.locator('figure.chart', { hasText: 'Price over time' });
  const stockChart = page.locator('figure.chart', { hasText: 'Stock on hand over time' });
  const points = async () => priceChart.locator('circle').count();
  // Created with 20, two sold, three sold and given back: four changes.
  const stockPointsBefore = await stockChart.locator('circle').count();
  check(stockPointsBefore >= 4, `stock chart points: ${stockPointsBefore}`);
  const pointsBefore = await points();
  await page.getByLabel('Price (USD)').fill('15.00');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  const pointsAfter = await points();
  check(pointsAfter === pointsBefore + 1, `price chart points ${pointsBefore} -> ${pointsAfter}`);
  check((await priceChart.textContent()).includes('15.00'), 'the new price is written on the chart');
  console.log(`console: a new price added a point to the chart (${pointsBefore} -> ${pointsAfter})`);
  const stockBefore = await available(product.id);
  await page.getByLabel('Change in units on hand (negative to remove)').fill('5');
  await page.getByLabel('Reason').fill('restock from supplier');
  await page.getByRole('button', { name: 'Adjust' }).click();
  await page.getByText('Stock adjusted by 5.').waitFor();
  check((await available(product.id)) === stockBefore + 5, 'stock adjusted by 5');
  const stockPointsAfter = await stockChart.locator('circle').count();
  check(stockPointsAfter === stockPointsBefore + 1, `stock chart points ${stockPointsBefore} -> ${stockPointsAfter}`);
  console.log(`console: the adjustment added a point to the stock chart (${stockPointsBefore} -> ${stockPointsAfter})`);
  const image = join(shots, 'upload.png');
  writeFileSync(image, png(64, [200, 40, 40]));
  await page.getByLabel('Image (JPEG, PNG or WebP)').setInputFiles(image);
  await page.getByAltText('Preview of upload.png').waitFor();
  await page.getByLabel('Alternative text').fill('A red square');
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByText('Uploaded upload.png.').waitFor({ timeout: 20_000 });
  check((await page.locator('progress#upload-progress').getAttribute('value')) === '100', 'progress at 100');
  const thumbnail = page.locator('ul.images img[alt="A red square"]');
  await thumbnail.waitFor();
  await page.waitForFunction(
    () => [...document.querySelectorAll('ul.images img')].some((img) => img.complete && img.naturalWidth > 0),
  );
  console.log('console: an image uploaded with its progress and its thumbnail shown');
  await page.reload();
  check((await available(product.id)) === stockBefore + 5, 'a reload did not adjust the stock again');
  await accessible(page, 'product');
  await screenshots(page, 'product');

  // Users: the only admin cannot demote themself, and the page says why.
  await page.getByRole('link', { name: 'Users' }).click();
  await accessible(page, 'users');
  await screenshots(page, 'users');
  await page.getByLabel(`Role of ${adminEmail}`).selectOption('customer');
  await page
    .locator('tr', { has: page.getByLabel(`Role of ${adminEmail}`) })
    .getByRole('button', { name: 'Set role' })
    .click();
  const lastAdmin = await page.getByRole('alert').textContent();
  check(lastAdmin.includes('LAST_ADMIN'), `demoting the last admin: ${lastAdmin}`);
  console.log(`console: users: demoting the last admin refused: "${lastAdmin.trim()}"`);

  // Health: every backend, and the outbox.
  await page.getByRole('link', { name: 'Health' }).click();
  check((await page.locator('.badge', { hasText: 'SERVING' }).count()) === 3, 'three backends SERVING');
  await accessible(page, 'health');
  await screenshots(page, 'health');
  console.log(`console: health: ${(await page.locator('main').innerText()).replace(/\s+/g, ' ').slice(0, 200)}`);

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
  check((await customerPage.getByRole('link', { name: 'Users' }).count()) === 0, 'a customer has no Users link');
  const adminPage = await customerPage.goto(`${base}/console/users`);
  check(adminPage.status() === 403, `a customer on the users page: ${adminPage.status()}`);
  check(
    /admins only/i.test(await customerPage.getByRole('alert').textContent()),
    'the users page refused with the API\'s words',
  );
  const healthPage = await customerPage.goto(`${base}/console/health`);
  check(healthPage.status() === 403, `a customer on the health page: ${healthPage.status()}`);
  console.log('console: a customer is refused the users and health pages');
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
