// The console's only script, an enhancement: every page works without it.
// It shows times in the viewer's time zone and money in the viewer's
// locale, keeps order statuses live (WatchOrder over Server-Sent Events),
// and brings new orders into the first page of the list.
'use strict';

const locale = navigator.language || 'en';

function localize(root) {
  for (const time of root.querySelectorAll('time[datetime]')) {
    const when = new Date(time.getAttribute('datetime'));
    if (!Number.isNaN(when.getTime())) {
      time.textContent = when.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
      time.title = when.toISOString();
    }
  }
  for (const money of root.querySelectorAll('data[data-currency]')) {
    const minor = Number(money.value);
    const currency = money.dataset.currency;
    const digits = new Intl.NumberFormat(locale, { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits;
    money.textContent = new Intl.NumberFormat(locale, { style: 'currency', currency }).format(
      minor / 10 ** digits,
    );
  }
}

// A status as the page shows it.
function setStatus(cell, status) {
  const badge = cell.querySelector('.badge');
  if (!badge || badge.dataset.status === status) {
    return;
  }
  badge.dataset.status = status;
  badge.className = `badge status-${status}`;
  badge.textContent = status;
  const announce = document.getElementById('live-status');
  if (announce) {
    announce.textContent = `Order ${cell.closest('[data-order-id]').dataset.orderId.slice(-8)} is now ${status}.`;
  }
}

let source = null;
function watch() {
  if (source) {
    source.close();
    source = null;
  }
  const ids = [...document.querySelectorAll('[data-order-id][data-live]')].map(
    (row) => row.dataset.orderId,
  );
  if (ids.length === 0) {
    return;
  }
  source = new EventSource(`/console/orders/live?ids=${encodeURIComponent(ids.join(','))}`);
  source.addEventListener('order', (event) => {
    const order = JSON.parse(event.data);
    for (const row of document.querySelectorAll(`[data-order-id="${CSS.escape(order.id)}"]`)) {
      const cell = row.querySelector('[data-field="status"]') || row;
      setStatus(cell, order.status);
      const updated = row.querySelector('[data-field="updated"] time');
      if (updated && order.updateTime) {
        updated.setAttribute('datetime', order.updateTime);
        localize(row);
      }
    }
  });
}

// The first page of the list, fetched again every few seconds: rows that
// are new are put on top.
function followNewOrders() {
  const body = document.querySelector('tbody[data-refresh]');
  if (!body) {
    return;
  }
  const url = body.dataset.refresh;
  setInterval(async () => {
    const reply = await fetch(url, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (!reply.ok) {
      return;
    }
    const template = document.createElement('template');
    template.innerHTML = (await reply.text()).trim();
    const known = new Set([...body.querySelectorAll('[data-order-id]')].map((r) => r.dataset.orderId));
    const fresh = [...template.content.querySelectorAll('[data-order-id]')].filter(
      (r) => !known.has(r.dataset.orderId),
    );
    if (fresh.length === 0) {
      return;
    }
    const empty = body.querySelector('[data-empty]');
    if (empty) {
      empty.remove();
    }
    for (const row of fresh.reverse()) {
      localize(row);
      body.prepend(row);
    }
    const announce = document.getElementById('live-status');
    if (announce) {
      announce.textContent = `${fresh.length} new order${fresh.length > 1 ? 's' : ''}.`;
    }
    watch();
  }, 3000);
}

// Filters in the viewer's time zone: the offset goes with the form.
for (const form of document.querySelectorAll('form[data-tz]')) {
  form.addEventListener('submit', () => {
    form.elements.tzo.value = String(new Date().getTimezoneOffset());
  });
}

localize(document);
watch();
followNewOrders();
