// The orchestration list: filters, pages and auto-refresh.

import {
  AuthError, TERMINAL, api, append, badge, clear, el, fmtDuration, fmtTime, link, ready, refreshSwitch, route,
  showKeyPrompt, startRefresh, state, url,
} from './core.js';

// ---------------------------------------------------------------------------------------------------------------
// Orchestrations list

const RANGES = [
  ['', 'Any time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'], ['custom', 'Custom range'],
];
const RANGE_MS = { '15m': 15 * 60e3, '1h': 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 };

function listFilters() {
  const p = url.searchParams;
  return {
    prefix: p.get('prefix') || '', name: p.get('name') || '', status: p.get('status') || '',
    range: p.get('range') || '', from: p.get('from') || '', to: p.get('to') || '',
    pageSize: p.get('pageSize') || '', token: p.get('token') || '',
  };
}

function createdBounds(f) {
  if (RANGE_MS[f.range]) return { createdFrom: String(Date.now() - RANGE_MS[f.range]) };
  if (f.range === 'custom') {
    const out = {};
    if (f.from && !isNaN(Date.parse(f.from))) out.createdFrom = String(Date.parse(f.from));
    if (f.to && !isNaN(Date.parse(f.to))) out.createdTo = String(Date.parse(f.to));
    return out;
  }
  return {};
}

export function renderInstances() {
  const f = listFilters();
  const stack = (history.state && history.state.stack) || [];
  const main = clear(document.getElementById('main'));

  const prefix = el('input', { type: 'text', id: 'filter-prefix', value: f.prefix, placeholder: 'e.g. order-' });
  const name = el('input', { type: 'text', id: 'filter-name', value: f.name, placeholder: 'any part of the name' });
  const chosen = new Set(f.status.split(',').filter(Boolean));
  const statusSummary = el('summary', { id: 'filter-status' });
  const setSummary = () => { statusSummary.textContent = chosen.size ? [...chosen].join(', ') : 'All statuses'; };
  setSummary();
  const statusMenu = el('div', { class: 'menu' }, state.info.statuses.map((s) => {
    const box = el('input', { type: 'checkbox', value: s, checked: chosen.has(s) });
    box.addEventListener('change', () => { if (box.checked) chosen.add(s); else chosen.delete(s); setSummary(); });
    return el('label', {}, box, badge(s));
  }));
  const statusPicker = el('details', { class: 'multiselect' }, statusSummary, statusMenu);
  const range = el('select', { id: 'filter-range' }, RANGES.map(([v, label]) => el('option', { value: v, text: label })));
  range.value = f.range;
  const from = el('input', { type: 'datetime-local', id: 'filter-from', value: f.from, step: '1' });
  const to = el('input', { type: 'datetime-local', id: 'filter-to', value: f.to, step: '1' });
  const custom = [el('label', { class: 'field' }, el('span', { text: 'From' }), from), el('label', { class: 'field' }, el('span', { text: 'To' }), to)];
  const showCustom = () => custom.forEach((c) => { c.hidden = range.value !== 'custom'; });
  range.addEventListener('change', showCustom);
  showCustom();
  const sizes = [...new Set([25, 50, 100, 200, state.info.defaultPageSize])]
    .filter((n) => n <= state.info.maxPageSize).sort((a, b) => a - b);
  const size = el('select', { id: 'filter-size' }, sizes.map((n) => el('option', { value: String(n), text: `${n} per page` })));
  size.value = f.pageSize || String(state.info.defaultPageSize);

  const apply = () => {
    statusPicker.open = false;
    const next = {
      prefix: prefix.value.trim(), name: name.value.trim(), status: [...chosen].join(','),
      range: range.value, from: range.value === 'custom' ? from.value : '', to: range.value === 'custom' ? to.value : '',
      pageSize: size.value === String(state.info.defaultPageSize) ? '' : size.value,
    };
    history.pushState({ stack: [] }, '', link('./', next));
    route();
  };
  const reset = () => { history.pushState({ stack: [] }, '', link('./')); route(); };
  for (const input of [prefix, name]) input.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });

  const summary = el('span', { id: 'list-summary' });
  const refreshed = el('span', { class: 'faint' });
  const tbody = el('tbody');
  const note = el('div', { class: 'note', hidden: true });
  const prev = el('button', { type: 'button', id: 'page-prev', text: '‹ Previous', disabled: stack.length === 0 });
  const next = el('button', { type: 'button', id: 'page-next', text: 'Next ›', disabled: true });
  const pageLabel = el('span', { text: `Page ${stack.length + 1}` });
  let nextToken = null;

  prev.addEventListener('click', () => {
    const s = stack.slice(0, -1);
    history.pushState({ stack: s }, '', link('./', { ...f, token: stack[stack.length - 1] }));
    route();
  });
  next.addEventListener('click', () => {
    if (!nextToken) return;
    history.pushState({ stack: [...stack, f.token] }, '', link('./', { ...f, token: nextToken }));
    route();
  });

  const load = async () => {
    try {
      const data = await api('instances', {
        prefix: f.prefix, name: f.name, status: f.status, pageSize: f.pageSize, token: f.token, ...createdBounds(f),
      });
      clear(tbody);
      if (data.items.length === 0) {
        tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No orchestration instances match these filters.' })));
      }
      const now = Date.now();
      for (const item of data.items) {
        const end = item.completedAt || (TERMINAL.has(item.status) ? item.lastUpdatedAt : now);
        tbody.append(el('tr', { dataset: { instanceId: item.instanceId, status: item.status } },
          el('td', { class: 'id' }, el('a', { href: link('instance', { id: item.instanceId }), text: item.instanceId })),
          el('td', {}, item.name, item.version ? el('span', { class: 'faint', text: ` v${item.version}` }) : null),
          el('td', {}, badge(item.status)),
          el('td', { class: 'nowrap', text: fmtTime(item.createdAt) }),
          el('td', { class: 'nowrap', text: fmtTime(item.lastUpdatedAt) }),
          el('td', { class: 'nowrap num', text: item.createdAt ? fmtDuration(end - item.createdAt) : '—' })));
      }
      nextToken = data.next;
      next.disabled = !data.next;
      const first = stack.length * Number(f.pageSize || state.info.defaultPageSize);
      summary.textContent = data.items.length
        ? `Showing ${first + 1}–${first + data.items.length}${data.next ? '' : ` of ${first + data.items.length}`}`
        : (f.token ? 'No more instances' : '');
      if (f.name && data.scanLimitReached) {
        note.hidden = false;
        note.textContent = `Searched ${data.scanned.toLocaleString()} instances for names containing “${f.name}” ` +
          'without filling the page. Select Next to keep searching.';
      } else {
        note.hidden = true;
      }
      refreshed.textContent = `Updated ${fmtTime(Date.now()).slice(11, 19)}`;
      ready();
    } catch (e) {
      if (e instanceof AuthError) return showKeyPrompt();
      clear(tbody).append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, el('span', { class: 'ev-failure', text: e.message }))));
      ready();
    }
  };

  append(main, [
    el('div', { class: 'page-head' }, el('div', {}, el('h1', { text: 'Orchestrations' }),
      el('div', { class: 'sub', text: 'Instances in this task hub, filtered and paged by the backend.' }))),
    el('div', { class: 'card' },
      el('div', { class: 'filters' },
        el('label', { class: 'field' }, el('span', { text: 'Instance ID starts with' }), prefix),
        el('label', { class: 'field' }, el('span', { text: 'Name contains' }), name),
        el('div', { class: 'field' }, el('span', { text: 'Status' }), statusPicker),
        el('label', { class: 'field' }, el('span', { text: 'Created' }), range),
        custom,
        el('label', { class: 'field' }, el('span', { text: 'Page size' }), size),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'primary', id: 'filter-apply', text: 'Apply', on: { click: apply } }),
          el('button', { type: 'button', class: 'ghost', id: 'filter-reset', text: 'Reset', on: { click: reset } }))),
      el('div', { class: 'toolbar' }, summary, el('div', { class: 'grow' }), refreshed, refreshSwitch(load),
        el('button', { type: 'button', class: 'small', id: 'refresh', text: 'Refresh', on: { click: load } })),
      el('div', { class: 'table-wrap' }, el('table', { class: 'data list', id: 'instances-table' },
        el('thead', {}, el('tr', {}, ['Instance ID', 'Name', 'Status', 'Created', 'Last updated', 'Duration']
          .map((h, i) => el('th', { class: i === 5 ? 'num' : (i > 2 ? 'nowrap' : null), text: h })))),
        tbody)),
      note,
      el('div', { class: 'pager' }, prev, next, pageLabel)),
  ]);
  startRefresh(load);
  return load();
}
