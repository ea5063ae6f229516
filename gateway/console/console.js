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

// The first page of the list, fetched again every few seconds. New orders
// are announced, and put on top when the viewer asks (a button in space
// kept for it): rows never move under the viewer's eyes.
function followNewOrders() {
  const body = document.querySelector('tbody[data-refresh]');
  const button = document.getElementById('show-new-orders');
  if (!body || !button) {
    return;
  }
  const url = body.dataset.refresh;
  let waiting = [];
  button.addEventListener('click', () => {
    const empty = body.querySelector('[data-empty]');
    if (empty) {
      empty.remove();
    }
    for (const row of waiting.reverse()) {
      localize(row);
      body.prepend(row);
    }
    waiting = [];
    button.hidden = true;
    body.querySelector('a')?.focus();
    watch();
  });
  setInterval(async () => {
    const reply = await fetch(url, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
    if (!reply.ok) {
      return;
    }
    const template = document.createElement('template');
    template.innerHTML = (await reply.text()).trim();
    const known = new Set(
      [...body.querySelectorAll('[data-order-id]'), ...waiting].map((r) => r.dataset.orderId),
    );
    const fresh = [...template.content.querySelectorAll('[data-order-id]')].filter(
      (r) => !known.has(r.dataset.orderId),
    );
    if (fresh.length === 0) {
      return;
    }
    waiting = [...fresh, ...waiting];
    button.textContent = `Show ${waiting.length} new order${waiting.length > 1 ? 's' : ''}`;
    button.hidden = false;
    const announce = document.getElementById('live-status');
    if (announce) {
      announce.textContent = `${waiting.length} new order${waiting.length > 1 ? 's' : ''}.`;
    }
  }, 3000);
}

// Filters in the viewer's time zone: the offset goes with the form.
for (const form of document.querySelectorAll('form[data-tz]')) {
  form.addEventListener('submit', () => {
    form.elements.tzo.value = String(new Date().getTimezoneOffset());
  });
}

// An image upload with its progress, and the thumbnail once stored.
function uploads() {
  const form = document.getElementById('upload');
  if (!form) {
    return;
  }
  const progress = document.getElementById('upload-progress');
  const status = document.getElementById('upload-status');
  const list = document.getElementById('images');
  // A preview of the chosen file before it is sent.
  const preview = document.getElementById('upload-preview');
  form.elements.file.addEventListener('change', () => {
    const file = form.elements.file.files[0];
    if (preview.src) {
      URL.revokeObjectURL(preview.src);
    }
    if (file) {
      preview.src = URL.createObjectURL(file);
      preview.alt = `Preview of ${file.name}`;
      preview.hidden = false;
    } else {
      preview.hidden = true;
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file) {
      return;
    }
    const product = form.dataset.product;
    const alt = form.elements.alt.value;
    const request = new XMLHttpRequest();
    request.open('PUT', `/console/products/${encodeURIComponent(product)}/images?altText=${encodeURIComponent(alt)}`);
    request.setRequestHeader('content-type', file.type || 'application/octet-stream');
    request.setRequestHeader('x-csrf-token', form.dataset.csrf);
    progress.hidden = false;
    progress.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    request.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) {
        progress.value = Math.round((e.loaded / e.total) * 100);
      }
    });
    request.addEventListener('load', () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText || '{}');
      } catch {
        body = {};
      }
      if (request.status === 201 && body.image) {
        progress.value = 100;
        const item = document.createElement('li');
        const img = document.createElement('img');
        img.src = `/v1/products/${encodeURIComponent(product)}/images/${encodeURIComponent(body.image.id)}/thumbnail`;
        img.alt = alt || `Image ${body.image.id}`;
        img.width = 160;
        img.height = 160;
        item.append(img);
        list.append(item);
        status.textContent = `Uploaded ${file.name}.`;
        form.reset();
        preview.hidden = true;
      } else {
        status.textContent = `Upload refused: ${(body.error && body.error.message) || request.status}`;
      }
    });
    request.addEventListener('error', () => {
      status.textContent = 'Upload failed: the connection broke.';
    });
    request.send(file);
  });
}

localize(document);
watch();
followNewOrders();
uploads();
