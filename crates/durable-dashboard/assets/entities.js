// Entities: the list and one entity.

import {
  ApiError, AuthError, api, append, clear, el, fact, fmtTime, link, payloadCard, ready, refreshSwitch, route,
  showError, showKeyPrompt, startRefresh, state, stopRefresh, url,
} from './core.js';

// ---------------------------------------------------------------------------------------------------------------
// Entities

export function renderEntities() {
  const p = url.searchParams;
  const f = { name: p.get('name') || '', key: p.get('key') || '', token: p.get('token') || '', pageSize: p.get('pageSize') || '' };
  const stack = (history.state && history.state.stack) || [];
  const main = clear(document.getElementById('main'));
  const name = el('input', { type: 'text', id: 'entity-name', value: f.name, placeholder: 'e.g. counter' });
  const key = el('input', { type: 'text', id: 'entity-key', value: f.key, placeholder: 'needs the name' });
  const apply = () => { history.pushState({ stack: [] }, '', link('entities', { name: name.value.trim(), key: key.value.trim() })); route(); };
  for (const input of [name, key]) input.addEventListener('keydown', (e) => { if (e.key === 'Enter') apply(); });
  const tbody = el('tbody');
  const prev = el('button', { type: 'button', text: '‹ Previous', disabled: stack.length === 0 });
  const next = el('button', { type: 'button', text: 'Next ›', disabled: true });
  const refreshed = el('span', { class: 'faint' });
  let nextToken = null;
  prev.addEventListener('click', () => {
    history.pushState({ stack: stack.slice(0, -1) }, '', link('entities', { ...f, token: stack[stack.length - 1] }));
    route();
  });
  next.addEventListener('click', () => {
    if (!nextToken) return;
    history.pushState({ stack: [...stack, f.token] }, '', link('entities', { ...f, token: nextToken }));
    route();
  });
  const load = async () => {
    try {
      const data = await api('entities', f);
      clear(tbody);
      if (data.items.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: 'No entities match.' })));
      for (const e of data.items) {
        tbody.append(el('tr', { dataset: { entityId: e.entityId } },
          el('td', { class: 'id' }, el('a', { href: link('entity', { id: e.entityId }), text: e.name || e.entityId })),
          el('td', { class: 'id', text: e.key }),
          el('td', { class: 'payload-cell state' }, e.state === null ? el('span', { class: 'faint', text: 'no state' })
            : el('pre', { text: e.state + (e.stateTruncated ? '…' : '') })),
          el('td', { class: 'id locked' }, e.lockedBy ? el('a', { href: link('instance', { id: e.lockedBy }), text: e.lockedBy }) : el('span', { class: 'faint', text: '—' })),
          el('td', { class: 'num', text: String(e.backlog) }),
          el('td', { class: 'nowrap', text: fmtTime(e.lastModifiedAt) })));
      }
      nextToken = data.next;
      next.disabled = !data.next;
      refreshed.textContent = `Updated ${fmtTime(Date.now()).slice(11, 19)}`;
      ready();
    } catch (e) {
      if (e instanceof AuthError) return showKeyPrompt();
      clear(tbody).append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, el('span', { class: 'ev-failure', text: e.message }))));
      ready();
    }
  };
  append(main, [
    el('div', { class: 'page-head' }, el('div', {}, el('h1', { text: 'Entities' }),
      el('div', { class: 'sub', text: 'Durable entities with their state, the orchestration holding their lock and their queued operations.' }))),
    el('div', { class: 'card' },
      el('div', { class: 'filters' },
        el('label', { class: 'field' }, el('span', { text: 'Entity name' }), name),
        el('label', { class: 'field' }, el('span', { text: 'Key starts with' }), key),
        el('div', { class: 'actions' },
          el('button', { type: 'button', class: 'primary', text: 'Apply', on: { click: apply } }),
          el('button', { type: 'button', class: 'ghost', text: 'Reset', on: { click: () => { history.pushState({ stack: [] }, '', link('entities')); route(); } } }))),
      el('div', { class: 'toolbar' }, el('div', { class: 'grow' }), refreshed, refreshSwitch(load),
        el('button', { type: 'button', class: 'small', text: 'Refresh', on: { click: load } })),
      el('div', { class: 'table-wrap' }, el('table', { class: 'data list', id: 'entities-table' },
        el('thead', {}, el('tr', {}, ['Entity', 'Key', 'State', 'Locked by', 'Backlog', 'Last modified']
          .map((h, i) => el('th', { class: i === 4 ? 'num' : 'nowrap', text: h })))),
        tbody)),
      el('div', { class: 'pager' }, prev, next)),
  ]);
  startRefresh(load);
  return load();
}

export async function renderEntity(id) {
  const main = clear(document.getElementById('main'));
  if (!id) return showError(new ApiError('No entity ID was given.', 400));
  const holder = el('div');
  main.append(holder);
  const load = async () => {
    let e;
    try { e = await api('entity', { id }); } catch (err) { stopRefresh(); return showError(err); }
    document.title = `${e.entityId} · ${state.info.title}`;
    clear(holder);
    append(holder, [
      el('div', { class: 'page-head' }, el('div', { class: 'grow' },
        el('div', { class: 'crumbs' }, el('a', { href: link('entities'), text: 'Entities' }), ' / ', e.name),
        el('div', { class: 'title-line' }, el('h1', { class: 'instance-id', text: e.entityId }))),
      el('div', { class: 'actions' }, refreshSwitch(load), el('button', { type: 'button', class: 'ghost', text: 'Refresh', on: { click: load } }))),
      el('div', { class: 'card' }, el('dl', { class: 'facts cols-5' },
        fact('Entity name', e.name), fact('Key', el('span', { class: 'mono', text: e.key })),
        fact('Locked by', e.lockedBy ? el('a', { class: 'mono', href: link('instance', { id: e.lockedBy }), text: e.lockedBy }) : null),
        fact('Backlog', String(e.backlog)), fact('Last modified', fmtTime(e.lastModifiedAt)))),
      payloadCard('State', e.state, 'entity-state'),
    ]);
    ready();
  };
  startRefresh(load);
  return load();
}
