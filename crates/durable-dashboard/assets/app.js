// Durable Dashboard. Plain JavaScript modules, no build step, no external code.

import { api, clear, el, link, setRouter, setUtc, showError, state, stopRefresh, url } from './core.js';
import { renderEntities, renderEntity } from './entities.js';
import { renderInstance } from './instance.js';
import { renderInstances } from './instances.js';

// ---------------------------------------------------------------------------------------------------------------
// Routing and start-up

function page() {
  const base = new URL(document.baseURI).pathname;
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '';
  return path.replace(/\/+$/, '');
}

function draw() {
  stopRefresh();
  state.rerender = null;
  document.body.dataset.state = 'loading';
  url.href = location.href;
  const current = page();
  document.getElementById('nav-instances').classList.toggle('active', current === '' || current === 'instance');
  document.getElementById('nav-entities').classList.toggle('active', current === 'entities' || current === 'entity');
  document.title = state.info ? state.info.title : document.title;
  const id = url.searchParams.get('id');
  switch (current) {
    case 'instance': return renderInstance(id);
    case 'entities': return renderEntities();
    case 'entity': return renderEntity(id);
    default: return renderInstances();
  }
}

function setupChrome() {
  const info = state.info;
  document.getElementById('title').textContent = info.title;
  document.getElementById('brand').setAttribute('href', link('./'));
  document.getElementById('nav-instances').setAttribute('href', link('./'));
  document.getElementById('nav-entities').setAttribute('href', link('entities'));
  const hubs = info.taskHubs || [];
  if (hubs.length > 1) {
    const picker = document.getElementById('hub');
    clear(picker);
    for (const hub of hubs) picker.append(el('option', { value: hub, text: hub }));
    picker.value = state.hub || hubs[0];
    picker.onchange = () => { state.hub = picker.value === hubs[0] ? '' : picker.value; location.href = link('./'); };
    document.getElementById('hub-picker').hidden = false;
  } else if (hubs.length === 1) {
    const label = document.getElementById('hub-name');
    clear(label).append('Task hub ', el('strong', { text: hubs[0] }));
    label.hidden = false;
  }
  const tz = document.getElementById('timezone');
  tz.textContent = state.utc ? 'UTC' : 'Local time';
  tz.onclick = () => {
    setUtc(!state.utc);
    tz.textContent = state.utc ? 'UTC' : 'Local time';
    if (state.rerender) state.rerender();
  };
}

async function start() {
  try {
    state.info = await api('info');
  } catch (e) {
    return showError(e);
  }
  setupChrome();
  draw();
}

setRouter(draw, start);
window.addEventListener('popstate', () => draw());
start();
