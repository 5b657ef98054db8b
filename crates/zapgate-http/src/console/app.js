// The zapgate console: a small static app on the HTTP API. Every action is
// an API call with the signed-in token, so the API's tenancy rules are the
// console's. The token lives in sessionStorage only: never in a URL, never
// in a cookie, gone when the browser tab closes.
'use strict';

// The console is served at <prefix>/console; the API sits next to it.
const BASE = location.pathname.replace(/\/console\/?$/, '');
const TOKEN_KEY = 'zapgate.token';
const KIND_KEY = 'zapgate.kind';
const EVENTS = ['message.exchange', 'message.status', 'call.update', 'group.flow', 'instance.state', 'label.update'];
const STATE_POLL_MS = 2000;
const CHATWOOT_POLL_MS = 10000;
// Each connect call starts a fresh login whose first QR code WhatsApp keeps
// for about 60 s: ask for a new one before that, not so often that a scan
// in progress is cut short.
const QR_REFRESH_MS = 45000;

const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get kind() { return sessionStorage.getItem(KIND_KEY); },
  set(token, kind) { sessionStorage.setItem(TOKEN_KEY, token); sessionStorage.setItem(KIND_KEY, kind); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(KIND_KEY); },
};

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// One API call. Fails with the server's exact `error.message`.
async function api(method, path, body, token = session.token) {
  const headers = { token: token || '' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (_) {
    throw new ApiFailure(0, 'The server could not be reached. Check your connection and try again.');
  }
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON: reported below */ }
  if (!res.ok) {
    const message = data && data.error && typeof data.error.message === 'string'
      ? data.error.message : `HTTP ${res.status} ${res.statusText}`;
    throw new ApiFailure(res.status, message);
  }
  return data;
}

// DOM building without innerHTML: server text is always text.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', {}, hint) : null);
}

function checkbox(id, label, checked) {
  return h('label', { class: 'check' }, h('input', { type: 'checkbox', id, checked: !!checked }), ' ', label);
}

function eventBoxes(prefix, selected) {
  return h('fieldset', { class: 'events' },
    h('legend', {}, 'Events (none ticked: all)'),
    EVENTS.map((e) => checkbox(`${prefix}-${e.replace('.', '-')}`, e, selected.includes(e))));
}

function ticked(prefix) {
  return EVENTS.filter((e) => document.getElementById(`${prefix}-${e.replace('.', '-')}`).checked);
}

// A status line: progress while an action runs, its result, or its failure.
function statusLine(id) {
  return h('p', { id, class: 'status', role: 'status', 'aria-live': 'polite' });
}

function say(el, text, kind) {
  el.textContent = text;
  el.className = `status ${kind || ''}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

// Runs `action` with `button` disabled and progress shown in `line`.
async function run(button, line, progress, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  say(line, progress, 'busy');
  try {
    const done = await action();
    say(line, done || '', 'ok');
  } catch (err) {
    say(line, err.message, 'error');
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

function confirmDialog(text, okLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

function badge(state, id) {
  return h('span', { class: `badge ${state}`, id }, state);
}

// ---------------------------------------------------------------- views

const main = () => document.getElementById('main');
let timers = [];

function stopTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

function every(ms, fn) {
  timers.push(setInterval(fn, ms));
}

function show(title, ...content) {
  document.title = `${title} - zapgate console`;
  const m = main();
  m.replaceChildren(h('h1', {}, title), ...content);
  m.focus({ preventScroll: true });
}

function renderNav() {
  const nav = document.getElementById('nav');
  if (!session.token) { nav.replaceChildren(); return; }
  const links = session.kind === 'admin'
    ? [h('a', { href: '#/accounts' }, 'Accounts')]
    : [h('a', { href: '#/instances' }, 'Instances')];
  nav.replaceChildren(...links, h('button', {
    type: 'button', id: 'sign-out', class: 'link',
    onclick: () => { session.clear(); location.hash = '#/'; route(); },
  }, 'Sign out'));
}

function signInView() {
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', required: true });
  const line = statusLine('sign-in-status');
  const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
  const form = h('form', {
    id: 'sign-in-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(button, line, 'Checking the token…', async () => {
        const token = input.value.trim();
        const kind = await tokenKind(token);
        session.set(token, kind);
        input.value = '';
        location.hash = kind === 'admin' ? '#/accounts' : '#/instances';
        route();
      });
    },
  },
  field('Token', input, 'An account token, an instance token, or the operator\'s admin token. It is kept in this browser tab only.'),
  button, line);
  show('Sign in', form);
  input.focus();
}

// Which token this is, from what the API lets it do.
async function tokenKind(token) {
  try {
    await api('GET', '/admin/accounts', undefined, token);
    return 'admin';
  } catch (err) {
    if (err.status === 0) throw err;
  }
  await api('GET', '/api/instance/list', undefined, token);
  // Creating needs the account token: an empty body is refused without creating anything.
  try {
    await api('POST', '/api/instance/new', {}, token);
  } catch (err) {
    if (err.status === 401) return 'instance';
  }
  return 'account';
}

// ------------------------------------------------------------- accounts

function accountsView() {
  const list = h('div', { id: 'accounts' });
  const listLine = statusLine('accounts-status');
  const name = h('input', { id: 'account-name', required: true, maxlength: 100 });
  const max = h('input', { id: 'account-max', type: 'number', min: 1, value: 10, required: true });
  const rate = h('input', { id: 'account-rate', type: 'number', min: 1, placeholder: 'server default' });
  const created = h('div', { id: 'account-created', 'aria-live': 'polite' });
  const line = statusLine('account-create-status');
  const button = h('button', { type: 'submit', id: 'account-create' }, 'Create account');

  async function load() {
    say(listLine, 'Loading accounts…', 'busy');
    try {
      const data = await api('GET', '/admin/accounts');
      say(listLine, data.message, 'ok');
      list.replaceChildren(table(['Name', 'Id', 'Max instances', 'Created', ''],
        data.accounts.map((a) => {
          const del = h('button', { type: 'button', class: 'danger' }, 'Delete');
          const rowLine = statusLine();
          del.addEventListener('click', async () => {
            if (!await confirmDialog(`Delete account "${a.name}" with all its instances? This cannot be undone.`, 'Delete account')) return;
            run(del, rowLine, 'Deleting…', async () => { await api('DELETE', `/admin/accounts/${encodeURIComponent(a.id)}`); await load(); return 'Deleted'; });
          });
          return [a.name, h('code', {}, a.id), String(a.maxInstances), a.createdAt, h('span', {}, del, rowLine)];
        })));
    } catch (err) { say(listLine, err.message, 'error'); }
  }

  const form = h('form', {
    id: 'account-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(button, line, 'Creating the account…', async () => {
        const body = { name: name.value.trim(), maxInstances: Number(max.value) };
        if (rate.value) body.rateLimitPerMinute = Number(rate.value);
        const data = await api('POST', '/admin/accounts', body);
        created.replaceChildren(h('div', { class: 'once' },
          h('p', {}, h('strong', {}, `Token of "${data.account.name}"`), ' - shown this once; copy it now:'),
          h('code', { id: 'account-token' }, data.token)));
        name.value = '';
        await load();
        return data.message;
      });
    },
  }, h('h2', {}, 'New account'), field('Name', name), field('Max instances', max), field('Requests per minute', rate), button, line);

  show('Accounts', form, created, h('h2', {}, 'All accounts'), listLine, list);
  load();
}

function table(headings, rows) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

// ------------------------------------------------------------ instances

function instancesView() {
  const list = h('div', { id: 'instances' });
  const listLine = statusLine('instances-status');
  const content = [];
  if (session.kind === 'account') content.push(createInstanceForm());
  content.push(h('h2', {}, 'Instances'), listLine, list);

  async function load(quiet) {
    if (!quiet) say(listLine, 'Loading instances…', 'busy');
    try {
      const data = await api('GET', '/api/instance/list');
      say(listLine, data.message, 'ok');
      list.replaceChildren(table(['Instance', 'State', 'Number', 'Chatwoot'], data.instances.map((i) => [
        h('a', { href: `#/instance/${encodeURIComponent(i.name)}` }, i.name),
        badge(i.connection.state),
        i.connection.numberJid || '-',
        i.chatwoot.enabled ? badge(i.chatwoot.status) : 'off',
      ])));
    } catch (err) { say(listLine, err.message, 'error'); }
  }
  show('Instances', ...content);
  load(false);
  every(STATE_POLL_MS * 2, () => load(true));
}

function createInstanceForm() {
  const name = h('input', { id: 'instance-name', required: true, maxlength: 64, pattern: '[A-Za-z0-9_-]{1,64}', autocomplete: 'off' });
  const token = h('input', { id: 'instance-token', type: 'password', minlength: 16, autocomplete: 'off', placeholder: 'generated when empty' });
  const webhook = h('input', { id: 'instance-webhook', type: 'url', placeholder: 'https://example.com/hook' });
  const line = statusLine('instance-create-status');
  const button = h('button', { type: 'submit', id: 'instance-create' }, 'Create instance');
  const settings = [
    ['autoRejectCalls', 'Reject calls'], ['ignoreGroupMessages', 'Ignore group messages'],
    ['keepOnlineStatus', 'Keep online status'], ['autoReadMessages', 'Mark messages read'],
    ['disableHistorySync', 'Skip history sync'], ['ignoreStatus', 'Ignore status posts'],
  ];
  return h('form', {
    id: 'instance-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(button, line, 'Creating the instance…', async () => {
        const body = { name: name.value.trim() };
        if (token.value) body.token = token.value;
        if (webhook.value.trim()) { body.webhookEnabled = true; body.webhookURL = webhook.value.trim(); }
        for (const [key] of settings) if (document.getElementById(`set-${key}`).checked) body[key] = true;
        const data = await api('POST', '/api/instance/new', body);
        location.hash = `#/instance/${encodeURIComponent(data.instance.name)}`;
        return data.message;
      });
    },
  }, h('h2', {}, 'New instance'),
  field('Name', name, 'Letters, digits, - and _ (at most 64).'),
  field('Instance token (optional)', token, 'At least 16 characters, unique on the server.'),
  field('Webhook URL (optional)', webhook),
  h('details', {}, h('summary', {}, 'Settings'), settings.map(([key, label]) => checkbox(`set-${key}`, label, false))),
  button, line);
}

function instanceView(name) {
  const path = encodeURIComponent(name);
  show(name,
    connectionSection(name, path),
    chatwootSection(path),
    webhookSection(path),
    websocketSection(path),
    deliveriesSection(path));
}

function connectionSection(name, path) {
  const state = badge('…', 'state');
  const number = h('span', { id: 'number' });
  const qr = h('img', { id: 'qr', alt: 'QR code: scan it with WhatsApp on the phone (Linked devices)', hidden: true, width: 264, height: 264 });
  const pairing = h('p', { id: 'pairing-code', class: 'code', hidden: true });
  const line = statusLine('connect-status');
  const qrButton = h('button', { type: 'button', id: 'connect-qr' }, 'Connect with a QR code');
  const phone = h('input', { id: 'pair-phone', type: 'tel', placeholder: '5511999990000', autocomplete: 'off' });
  const pairButton = h('button', { type: 'submit', id: 'connect-code' }, 'Get a pairing code');
  const logout = h('button', { type: 'button', id: 'logout' }, 'Log out');
  const remove = h('button', { type: 'button', id: 'delete', class: 'danger', hidden: session.kind !== 'account' }, 'Delete instance');
  let current = null;
  let qrTimer = null;

  function stopQr() {
    if (qrTimer) { clearInterval(qrTimer); qrTimer = null; }
    qr.hidden = true;
    qr.removeAttribute('src');
  }

  function showCode(data) {
    if (data.status === 'qr') {
      qr.src = data.qrCodeBase64;
      qr.hidden = false;
      pairing.hidden = true;
    } else if (data.status === 'pairing') {
      stopQr();
      pairing.textContent = data.pairingCode;
      pairing.hidden = false;
    } else {
      stopQr();
    }
  }

  async function refresh() {
    try {
      const data = await api('GET', `/api/instance/list?instanceName=${path}`);
      const c = data.instances[0].connection;
      if (c.state !== current) {
        current = c.state;
        state.textContent = c.state;
        state.className = `badge ${c.state}`;
        if (c.state === 'connected') {
          stopQr();
          pairing.hidden = true;
          say(line, 'Connected', 'ok');
        }
      }
      number.textContent = c.numberJid ? ` ${c.numberJid}` : '';
    } catch (err) {
      say(line, err.message, 'error');
    }
  }

  async function connect(query) {
    const data = await api('GET', `/api/instance/connect/${path}${query}`);
    showCode(data);
    return data.message;
  }

  qrButton.addEventListener('click', () => run(qrButton, line, 'Asking WhatsApp for a QR code…', async () => {
    const message = await connect('');
    if (!qrTimer && !qr.hidden) {
      // A fresh code before this one expires, for as long as it is shown.
      qrTimer = setInterval(() => {
        if (qr.hidden || current === 'connected') return stopQr();
        connect('').catch((err) => say(line, err.message, 'error'));
      }, QR_REFRESH_MS);
      timers.push(qrTimer);
    }
    return `${message}: scan it with WhatsApp on the phone (Settings → Linked devices).`;
  }));
  const pairForm = h('form', {
    class: 'inline',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(pairButton, line, 'Asking WhatsApp for a pairing code…', async () => {
        const message = await connect(`?number=${encodeURIComponent(phone.value.trim())}`);
        return `${message}: type it on the phone (Linked devices → Link with phone number).`;
      });
    },
  }, field('Phone number', phone), pairButton);
  logout.addEventListener('click', async () => {
    if (!await confirmDialog(`Log "${name}" out of WhatsApp? The phone must pair again to reconnect.`, 'Log out')) return;
    run(logout, line, 'Logging out…', async () => { const d = await api('DELETE', `/api/instance/logout/${path}`); stopQr(); await refresh(); return d.message; });
  });
  remove.addEventListener('click', async () => {
    if (!await confirmDialog(`Delete "${name}"? Its settings, webhooks and Chatwoot integration go with it (the Chatwoot inbox is kept).`, 'Delete instance')) return;
    run(remove, line, 'Deleting…', async () => { await api('DELETE', `/api/instance/delete/${path}`); location.hash = '#/instances'; return 'Deleted'; });
  });

  refresh();
  every(STATE_POLL_MS, refresh);
  return h('section', { 'aria-labelledby': 'h-connection' },
    h('h2', { id: 'h-connection' }, 'WhatsApp'),
    h('p', {}, 'State: ', state, number),
    h('div', { class: 'actions' }, qrButton, logout, remove),
    pairForm, line, qr, pairing);
}

function chatwootSection(path) {
  const status = h('div', { id: 'cw-status' });
  const url = h('input', { id: 'cw-url', type: 'url', required: true, placeholder: 'https://chatwoot.example.com' });
  const account = h('input', { id: 'cw-account', type: 'number', min: 1, required: true });
  const token = h('input', { id: 'cw-token', type: 'password', required: true, autocomplete: 'off' });
  const inbox = h('input', { id: 'cw-inbox', placeholder: 'the instance name' });
  const flags = [
    ['signMessages', 'sign_messages', 'Sign agent messages with their name'],
    ['ignoreGroups', 'ignore_groups', 'Ignore groups'],
    ['startAsPending', 'start_as_pending', 'Start conversations as pending'],
    ['reopenResolved', 'reopen_resolved', 'Reopen resolved conversations'],
  ];
  const line = statusLine('cw-result');
  const activate = h('button', { type: 'submit', id: 'cw-activate' }, 'Activate');
  const deactivate = h('button', { type: 'button', id: 'cw-deactivate', class: 'danger', hidden: true }, 'Deactivate');
  const replay = h('button', { type: 'button', id: 'cw-replay', hidden: true }, 'Replay dead letters');
  let filled = false;

  async function refresh() {
    try {
      const info = await api('GET', `/api/chatwoot/list/${path}`);
      status.replaceChildren(h('p', {}, 'Status: ', badge(info.status, 'cw-state'),
        ` inbox "${info.chatwoot_inbox_name}" (#${info.chatwoot_inbox_id})`),
      info.last_error ? h('p', { class: 'error', id: 'cw-last-error' }, `Last error: ${info.last_error}`) : '');
      deactivate.hidden = false;
      replay.hidden = false;
      if (!filled) {
        filled = true;
        url.value = info.chatwoot_base_url;
        account.value = info.chatwoot_account_id;
        token.value = info.chatwoot_api_token;
        inbox.value = info.chatwoot_inbox_name;
        for (const [id, key] of flags) document.getElementById(`cw-${id}`).checked = info[key];
      }
    } catch (err) {
      deactivate.hidden = true;
      replay.hidden = true;
      status.replaceChildren(h('p', {}, 'Status: ', badge(err.status === 404 ? 'off' : 'unknown', 'cw-state'), ' ', err.message));
    }
  }

  const form = h('form', {
    id: 'cw-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(activate, line, 'Activating: creating the inbox in Chatwoot…', async () => {
        const body = {
          chatwootBaseUrl: url.value.trim(),
          chatwootAccountId: Number(account.value),
          chatwootApiToken: token.value,
        };
        if (inbox.value.trim()) body.inboxName = inbox.value.trim();
        for (const [id] of flags) body[id] = document.getElementById(`cw-${id}`).checked;
        try {
          const data = await api('POST', `/api/chatwoot/set/${path}`, body);
          return data.message;
        } finally {
          await refresh();
        }
      });
    },
  },
  field('Chatwoot URL', url), field('Account id', account),
  field('Agent API token', token, 'An administrator\'s access token (Profile settings → Access token).'),
  field('Inbox name', inbox),
  flags.map(([id, , label]) => checkbox(`cw-${id}`, label, false)),
  h('div', { class: 'actions' }, activate, replay, deactivate));

  // Bridge deliveries that failed every retry (last_error counts them).
  replay.addEventListener('click', () => run(replay, line, 'Queueing the dead letters again…', async () => {
    const data = await api('POST', `/api/chatwoot/replay/${path}`);
    await refresh();
    return `${data.message}: ${data.replayed}`;
  }));

  deactivate.addEventListener('click', async () => {
    if (!await confirmDialog('Deactivate Chatwoot for this instance? Chatwoot stops receiving its messages; the inbox and its conversations are kept in Chatwoot.', 'Deactivate')) return;
    run(deactivate, line, 'Deactivating…', async () => {
      const data = await api('DELETE', `/api/chatwoot/delete/${path}`);
      filled = false;
      await refresh();
      return data.message;
    });
  });

  refresh();
  every(CHATWOOT_POLL_MS, refresh);
  return h('section', { 'aria-labelledby': 'h-chatwoot' }, h('h2', { id: 'h-chatwoot' }, 'Chatwoot'), status, form, line);
}

function webhookSection(path) {
  const list = h('div', { id: 'webhooks' });
  const label = h('input', { id: 'wh-label', placeholder: 'default', maxlength: 100 });
  const url = h('input', { id: 'wh-url', type: 'url', placeholder: 'https://example.com/hook' });
  const auth = h('input', { id: 'wh-auth', type: 'password', autocomplete: 'off', placeholder: 'sent as the Authorization header' });
  const line = statusLine('wh-result');
  const button = h('button', { type: 'submit', id: 'wh-save' }, 'Save webhook');

  async function load() {
    try {
      const data = await api('GET', `/api/events/getWebhook/${path}`);
      list.replaceChildren(data.webhooks.length === 0 ? h('p', {}, 'No webhook yet.')
        : table(['Label', 'Enabled', 'URL', 'Events'], data.webhooks.map((w) => [
          w.label, w.enabled ? 'yes' : 'no', w.url || '-', w.events.length ? w.events.join(', ') : 'all'])));
    } catch (err) { say(line, err.message, 'error'); }
  }

  const form = h('form', {
    id: 'wh-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(button, line, 'Saving the webhook…', async () => {
        const body = {
          label: label.value.trim() || undefined,
          enabled: document.getElementById('wh-enabled').checked,
          url: url.value.trim() || undefined,
          authorization: auth.value || undefined,
          byEvents: document.getElementById('wh-byEvents').checked,
          mediaBase64: document.getElementById('wh-media').checked,
          events: ticked('wh'),
        };
        const data = await api('POST', `/api/events/webhook/${path}`, body);
        await load();
        return data.message;
      });
    },
  }, field('Label', label), field('URL', url), field('Authorization (optional)', auth),
  checkbox('wh-enabled', 'Enabled', true), checkbox('wh-byEvents', 'Append the event name to the URL', false),
  checkbox('wh-media', 'Include media as base64', false), eventBoxes('wh', []), button, line);
  load();
  return h('section', { 'aria-labelledby': 'h-webhooks' }, h('h2', { id: 'h-webhooks' }, 'Webhooks'), list, h('details', {}, h('summary', {}, 'Add or change a webhook'), form));
}

function websocketSection(path) {
  const line = statusLine('ws-result');
  const button = h('button', { type: 'submit', id: 'ws-save' }, 'Save WebSocket setting');
  const boxes = h('div', {});
  async function load() {
    try {
      const data = await api('GET', `/api/events/getWebsocket/${path}`);
      const ws = data.websocket;
      boxes.replaceChildren(checkbox('ws-enabled', 'Enabled', ws.enabled), checkbox('ws-media', 'Include media as base64', ws.mediaBase64), eventBoxes('ws', ws.events));
    } catch (err) { say(line, err.message, 'error'); }
  }
  const form = h('form', {
    id: 'ws-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      run(button, line, 'Saving…', async () => {
        const data = await api('POST', `/api/events/websocket/${path}`, {
          enabled: document.getElementById('ws-enabled').checked,
          mediaBase64: document.getElementById('ws-media').checked,
          events: ticked('ws'),
        });
        return data.message;
      });
    },
  }, h('p', {}, 'Clients connect to ', h('code', {}, `/ws/${decodeURIComponent(path)}`), ' with the token in the token or Authorization header.'), boxes, button, line);
  load();
  return h('section', { 'aria-labelledby': 'h-websocket' }, h('h2', { id: 'h-websocket' }, 'WebSocket'), form);
}

function deliveriesSection(path) {
  const list = h('div', { id: 'deliveries' });
  const line = statusLine('deliveries-status');
  const filter = h('select', { id: 'deliveries-filter' },
    ['', 'queued', 'running', 'delivered', 'dead'].map((s) => h('option', { value: s }, s || 'all')));
  const reload = h('button', { type: 'button', id: 'deliveries-reload' }, 'Reload');
  const replayAll = h('button', { type: 'button', id: 'deliveries-replay' }, 'Replay dead letters');

  async function load() {
    const q = filter.value ? `?status=${filter.value}&limit=50` : '?limit=50';
    const data = await api('GET', `/api/events/deliveries/${path}${q}`);
    list.replaceChildren(data.deliveries.length === 0 ? h('p', {}, 'No deliveries.')
      : table(['Event', 'Webhook', 'Status', 'Attempts', 'HTTP', 'Error', 'Updated', ''], data.deliveries.map((d) => {
        let action = '';
        if (d.status === 'dead') {
          const b = h('button', { type: 'button' }, 'Replay');
          b.addEventListener('click', () => run(b, line, 'Queueing again…', async () => {
            const r = await api('POST', `/api/events/deliveries/${path}/replay`, { id: d.id });
            await load();
            return r.message;
          }));
          action = b;
        }
        return [d.event, d.webhook, badge(d.status), String(d.attempts), d.responseStatus ? String(d.responseStatus) : '-', d.error || '', d.updatedAt, action];
      })));
    return `${data.deliveries.length} shown`;
  }
  filter.addEventListener('change', () => run(reload, line, 'Loading…', load));
  reload.addEventListener('click', () => run(reload, line, 'Loading…', load));
  replayAll.addEventListener('click', () => run(replayAll, line, 'Queueing every dead letter again…', async () => {
    const r = await api('POST', `/api/events/deliveries/${path}/replay`);
    await load();
    return `${r.message} (${r.replayed})`;
  }));
  run(reload, line, 'Loading…', load);
  return h('section', { 'aria-labelledby': 'h-deliveries' }, h('h2', { id: 'h-deliveries' }, 'Recent webhook deliveries'),
    h('div', { class: 'actions' }, field('Status', filter), reload, replayAll), line, list);
}

// --------------------------------------------------------------- router

// Sections start their polling while they are built: stop the last page's first.
function route() {
  stopTimers();
  renderNav();
  if (!session.token) return signInView();
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  if (session.kind === 'admin') return accountsView();
  if (page === 'instance' && rest.length) return instanceView(decodeURIComponent(rest.join('/')));
  return instancesView();
}

window.addEventListener('hashchange', route);
document.addEventListener('DOMContentLoaded', route);
