// Durable Dashboard: what every page shares (DOM helpers, formatting, the API, dialogs, refreshing).
// Everything that comes from the store (IDs, names, payloads, messages) reaches the page as text nodes or attribute
// values set through the DOM, never as markup.

const STORE_KEY = 'durable-dashboard-key';
const STORE_UTC = 'durable-dashboard-utc';
const STORE_AUTO = 'durable-dashboard-auto';
export const TERMINAL = new Set(['Completed', 'Failed', 'Terminated', 'Canceled']);

export const url = new URL(location.href);
export const state = {
  info: null,
  hub: url.searchParams.get('hub') || '',
  key: url.searchParams.get('code') || sessionStorage.getItem(STORE_KEY) || '',
  keyInUrl: url.searchParams.has('code'),
  utc: localStorage.getItem(STORE_UTC) === '1',
  auto: localStorage.getItem(STORE_AUTO) !== '0',
  timer: null,
  rerender: null,
};
if (state.key) sessionStorage.setItem(STORE_KEY, state.key);

export function setUtc(utc) {
  state.utc = utc;
  localStorage.setItem(STORE_UTC, utc ? '1' : '0');
}

// ---------------------------------------------------------------------------------------------------------------
// DOM helpers

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'on') for (const [event, fn] of Object.entries(v)) node.addEventListener(event, fn);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'style') Object.assign(node.style, v);
    else if (k === 'value') node.value = v;
    else if (k === 'checked') node.checked = !!v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// A link to one of the dashboard's own pages, carrying the hub and the key it was opened with.
export function link(page, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  if (state.hub) q.set('hub', state.hub);
  if (state.keyInUrl && state.key) q.set('code', state.key);
  const query = q.toString();
  return (page || './') + (query ? '?' + query : '');
}

export function badge(status, large) {
  return el('span', { class: 'badge s-' + String(status).toLowerCase() + (large ? ' large' : ''), text: status });
}

export function toast(message, isError) {
  const node = el('div', { class: 'toast' + (isError ? ' error' : ''), role: 'status', text: message });
  document.getElementById('toasts').append(node);
  setTimeout(() => node.remove(), isError ? 8000 : 4000);
}

export function ready() {
  document.body.dataset.state = 'ready';
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

const pad = (n, w) => String(n).padStart(w || 2, '0');

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  if (state.utc) {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)} UTC`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function pretty(text) {
  if (text === null || text === undefined) return null;
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

// One line when it fits, indented when it does not (a cut payload is shown as it is).
export function compact(text) {
  if (text === null || text === undefined) return null;
  try {
    const value = JSON.parse(text);
    const line = JSON.stringify(value);
    return line.length <= 100 ? line : JSON.stringify(value, null, 2);
  } catch (_) { return text; }
}

// ---------------------------------------------------------------------------------------------------------------
// API

export class AuthError extends Error {}
export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

export async function api(path, params, body) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  if (state.hub) q.set('hub', state.hub);
  const headers = { Accept: 'application/json' };
  if (state.key) headers['x-functions-key'] = state.key;
  const init = { method: 'GET', headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    init.method = 'POST';
    headers['Content-Type'] = 'application/json';
    headers['X-Dashboard-Request'] = '1';
    init.body = JSON.stringify(body);
  }
  const query = q.toString();
  let response;
  try {
    response = await fetch('api/' + path + (query ? '?' + query : ''), init);
  } catch (_) {
    throw new ApiError('The dashboard could not be reached.', 0);
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401) throw new AuthError('a key is needed');
  if (!response.ok) throw new ApiError((data && data.error) || `${response.status} ${response.statusText}`, response.status);
  return data;
}

// ---------------------------------------------------------------------------------------------------------------
// Dialogs: every action is confirmed first.

// fields: [{name, label, type: 'text'|'textarea'|'checkbox'|'password', placeholder, required, json}]
// run(values) performs the action; its error is shown in the dialog, which stays open for another try.
export function dialog({ title, message, target, fields, confirm, danger, run }) {
  return new Promise((resolve) => {
    const modal = el('dialog', { class: 'modal', id: 'dialog' });
    const error = el('p', { class: 'modal-error', hidden: true });
    const inputs = {};
    const body = el('div', { class: 'modal-body' },
      el('p', {}, message, target ? [' ', el('span', { class: 'target', text: target })] : null),
      (fields || []).map((f) => {
        if (f.type === 'checkbox') {
          inputs[f.name] = el('input', { type: 'checkbox', name: f.name });
          return el('label', { class: 'modal-check' }, inputs[f.name], f.label);
        }
        inputs[f.name] = f.type === 'textarea'
          ? el('textarea', { name: f.name, placeholder: f.placeholder, spellcheck: 'false' })
          : el('input', { type: f.type || 'text', name: f.name, placeholder: f.placeholder, autocomplete: 'off' });
        return el('label', { class: 'modal-field' }, el('span', { text: f.label }), inputs[f.name]);
      }),
      error);
    const cancel = el('button', { type: 'button', id: 'dialog-cancel', text: 'Cancel' });
    const ok = el('button', { type: 'button', id: 'dialog-confirm', class: danger ? 'danger solid' : 'primary', text: confirm });
    append(modal, [el('div', { class: 'modal-head' }, el('h2', { text: title })), body,
      el('div', { class: 'modal-foot' }, cancel, ok)]);
    document.body.append(modal);

    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      modal.close();
      modal.remove();
      resolve(result);
    };
    const submit = async () => {
      const values = {};
      for (const f of fields || []) {
        const input = inputs[f.name];
        values[f.name] = f.type === 'checkbox' ? input.checked : input.value.trim();
        if (f.required && !values[f.name]) return fail(`${f.label} is required.`);
        if (f.json && values[f.name]) {
          try { JSON.parse(values[f.name]); } catch (e) { return fail(`${f.label} is not valid JSON: ${e.message}`); }
        }
      }
      ok.disabled = true;
      cancel.disabled = true;
      try {
        const result = await run(values);
        finish(result === undefined ? true : result);
      } catch (e) {
        ok.disabled = false;
        cancel.disabled = false;
        if (e instanceof AuthError) { finish(null); showKeyPrompt(); return; }
        fail(e.message);
      }
    };
    const fail = (text) => { error.textContent = text; error.hidden = false; };
    cancel.addEventListener('click', () => finish(null));
    ok.addEventListener('click', submit);
    modal.addEventListener('cancel', (e) => { e.preventDefault(); if (!ok.disabled) finish(null); });
    modal.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.target.tagName === 'INPUT' && e.target.type !== 'checkbox') { e.preventDefault(); submit(); }
    });
    modal.showModal();
    const first = Object.values(inputs).find((i) => i.type !== 'checkbox');
    (first || ok).focus();
  });
}

export function showKeyPrompt() {
  stopRefresh();
  const main = clear(document.getElementById('main'));
  const input = el('input', { type: 'password', id: 'key-input', placeholder: 'master or durabletask_extension key', autocomplete: 'off' });
  const use = () => {
    const key = input.value.trim();
    if (!key) return;
    state.key = key;
    sessionStorage.setItem(STORE_KEY, key);
    start();
  };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') use(); });
  append(main, [el('div', { class: 'card' }, el('div', { class: 'panel-message' },
    el('h2', { text: state.key ? 'That key was not accepted' : 'This dashboard needs a key' }),
    el('p', { text: 'The server checks keys on its management API. Enter a key it accepts, or open the dashboard with ?code=<key>.' }),
    el('div', { class: 'key-form' }, input, el('button', { class: 'primary', type: 'button', text: 'Use key', on: { click: use } }))))]);
  input.focus();
  ready();
}

export function showError(error) {
  if (error instanceof AuthError) return showKeyPrompt();
  const main = clear(document.getElementById('main'));
  append(main, [el('div', { class: 'card' }, el('div', { class: 'panel-message' },
    el('h2', { text: error.status === 404 ? 'Not found' : 'Something went wrong' }),
    el('p', { text: error.message }),
    el('a', { class: 'button', href: link('./'), text: 'Back to orchestrations' })))]);
  ready();
}

// ---------------------------------------------------------------------------------------------------------------
// Auto-refresh

export function stopRefresh() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

export function startRefresh(fn) {
  stopRefresh();
  state.rerender = fn;
  if (!state.auto || !state.info) return;
  state.timer = setInterval(() => { if (!document.hidden) fn(); }, state.info.refreshSeconds * 1000);
}

export function refreshSwitch(fn) {
  const input = el('input', { type: 'checkbox', id: 'auto-refresh', checked: state.auto });
  input.addEventListener('change', () => {
    state.auto = input.checked;
    localStorage.setItem(STORE_AUTO, state.auto ? '1' : '0');
    if (state.auto) startRefresh(fn); else stopRefresh();
  });
  return el('label', { class: 'switch', title: `Refresh every ${state.info.refreshSeconds} s` }, input, 'Auto-refresh');
}

// ---------------------------------------------------------------------------------------------------------------
// Cards shared by the pages

export function fact(label, value) {
  return el('div', {}, el('dt', { text: label }), el('dd', {}, value === null || value === undefined || value === '' ? el('span', { class: 'faint', text: '—' }) : value));
}

export function payloadCard(title, text, id) {
  const shown = pretty(text);
  const copy = el('button', { type: 'button', class: 'ghost small', text: 'Copy', disabled: shown === null });
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(shown); toast(`${title} copied`); } catch (_) { toast('Copying is not allowed here', true); }
  });
  return el('div', { class: 'card', id },
    el('div', { class: 'card-head' }, el('h2', { text: title }), el('div', { class: 'grow' }), copy),
    el('div', { class: 'card-body' }, shown === null ? el('pre', { class: 'json none', text: 'None' }) : el('pre', { class: 'json', text: shown })));
}

// ---------------------------------------------------------------------------------------------------------------
// Navigation: the pages change the URL and ask the router (set by app.js) to draw the new one.

let router = () => {};
let starter = () => {};

export function setRouter(route, start) {
  router = route;
  starter = start;
}

export function route() {
  return router();
}

function start() {
  return starter();
}
