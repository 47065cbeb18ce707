// One orchestration instance: overview, failure, payloads, timeline, history and the actions.

import {
  ApiError, AuthError, TERMINAL, api, append, badge, clear, compact, dialog, el, fact, fmtDuration, fmtTime, link,
  payloadCard, pretty, ready, refreshSwitch, route, showError, startRefresh, state, stopRefresh, toast,
} from './core.js';

const KIND_LABEL = {
  orchestration: 'orchestration', activity: 'activity', timer: 'timer', suborchestration: 'sub-orchestration',
  entity: 'entity call', lock: 'entity lock', suspended: 'suspended', event: 'external event',
  message: 'event sent', signal: 'entity signal', unlock: 'unlock', terminated: 'terminated', rewound: 'rewound',
};
const MAX_SPANS = 1000;

// ---------------------------------------------------------------------------------------------------------------
// One instance

function failureView(failure) {
  if (!failure) return null;
  const item = el('div', { class: 'failure-item' },
    el('div', {}, el('span', { class: 'etype', text: failure.type || 'Error' }),
      failure.nonRetriable ? el('span', { class: 'tag-nonretriable', text: 'non-retriable' }) : null),
    el('p', { class: 'emsg', text: failure.message || '' }),
    failure.stackTrace ? el('details', {}, el('summary', { text: 'Stack trace' }), el('pre', { text: failure.stackTrace })) : null);
  if (failure.inner) {
    item.append(el('div', { class: 'failure-inner' }, el('div', { class: 'label', text: 'Caused by' }),
      failureView(failure.inner)));
  }
  return item;
}

// Tick spacing of 1, 2 or 5 times a power of ten, about `count` ticks over `total` ms.
function tickStep(total, count) {
  const raw = total / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

function timelineView(timeline, now, running) {
  const spans = timeline.spans || [];
  if (spans.length === 0) return el('div', { class: 'empty', text: 'No history yet.' });
  const t0 = timeline.start;
  let t1 = timeline.end || t0;
  for (const s of spans) if (s.end === null && running) t1 = Math.max(t1, now);
  const total = Math.max(t1 - t0, 1);
  const pos = (t) => Math.min(100, Math.max(0, ((t - t0) / total) * 100));
  const step = tickStep(total, 6);

  const axis = el('div', { class: 'tl-track' });
  for (let t = 0; t <= total + 1e-9; t += step) {
    axis.append(el('div', { class: 'tl-grid', style: { left: pos(t0 + t) + '%' } }));
    axis.append(el('div', { class: 'tl-tick' + (t === 0 ? ' first' : ''), style: { left: pos(t0 + t) + '%' }, text: '+' + fmtDuration(t) }));
  }
  const rows = [el('div', { class: 'tl-row tl-axis' }, el('div', { class: 'tl-label faint', text: 'Started ' + fmtTime(t0) }), axis)];

  for (const span of spans.slice(0, MAX_SPANS)) {
    const track = el('div', { class: 'tl-track' });
    const point = span.start !== null && span.end === span.start && span.status === 'done';
    const start = span.start === null ? t0 : span.start;
    const open = span.end === null;
    const end = open ? (running ? now : t1) : span.end;
    const duration = end - start;
    let title = `${span.name} (${KIND_LABEL[span.kind] || span.kind})\nstarted ${fmtTime(start)}`;
    if (point) {
      track.append(el('div', { class: `tl-point k-${span.kind}`, style: { left: pos(start) + '%' }, title }));
    } else {
      title += open ? `\nstill ${span.status === 'waiting' ? 'waiting' : 'running'}` : `\nended ${fmtTime(end)} (${fmtDuration(duration)}), ${span.status}`;
      if (span.plannedEnd) title += `\nfires at ${fmtTime(span.plannedEnd)}`;
      const left = pos(start);
      const width = Math.max(pos(end) - left, 0);
      track.append(el('div', {
        class: `tl-bar k-${span.kind} ${span.status}${open ? ' open' : ''}`,
        style: { left: left + '%', width: `calc(${width}% + 0px)` }, title,
      }));
      let label = open ? `${fmtDuration(duration)}…` : fmtDuration(duration);
      if (open && span.plannedEnd) label += ` (fires ${fmtTime(span.plannedEnd).slice(11, 19)})`;
      if (span.status === 'failed') label += ' · failed';
      track.append(el('span', { class: 'tl-dur', style: { left: `calc(${left + width}% + 6px)` }, text: label }));
    }
    const nameNode = span.instanceId && (span.kind === 'suborchestration' || span.kind === 'entity')
      ? el('a', { class: 'nm', href: span.kind === 'entity' ? link('entity', { id: span.instanceId }) : link('instance', { id: span.instanceId }), text: span.name, title: span.instanceId })
      : el('span', { class: 'nm', text: span.name, title: span.name });
    rows.push(el('div', { class: 'tl-row', dataset: { kind: span.kind, status: span.status } },
      el('div', { class: 'tl-label' }, el('span', { class: `tl-dot k-${span.kind}` }), nameNode,
        el('span', { class: 'kd', text: KIND_LABEL[span.kind] || span.kind })),
      track));
  }
  if (spans.length > MAX_SPANS) rows.push(el('div', { class: 'tl-more', text: `Showing the first ${MAX_SPANS} of ${spans.length} spans.` }));
  return el('div', { class: 'timeline', id: 'timeline' }, rows);
}

function legend(spans) {
  const kinds = [...new Set(spans.map((s) => s.kind))];
  return el('div', { class: 'tl-legend' }, kinds.map((k) => el('span', {}, el('i', { class: `k-${k}` }), KIND_LABEL[k] || k)));
}

function historyTable(instanceId, events, count, t0) {
  const rows = events.map((e) => {
    const details = [];
    if (e.target) {
      const page = e.target.startsWith('@') ? 'entity' : 'instance';
      details.push(el('div', {}, el('span', { class: 'kv', text: page === 'entity' ? 'entity ' : 'instance ' }),
        el('a', { class: 'mono', href: link(page, { id: e.target }), text: e.target })));
    }
    if (e.fireAt) details.push(el('div', {}, el('span', { class: 'kv', text: 'fires at ' }), fmtTime(e.fireAt)));
    if (e.status) details.push(el('div', {}, el('span', { class: 'kv', text: 'status ' }), badge(e.status)));
    if (e.failure) details.push(el('div', { class: 'ev-failure' }, `${e.failure.type}: ${e.failure.message}`));
    if (e.payload !== undefined) {
      const pre = el('pre', { text: compact(e.payload) });
      const cell = el('div', { class: 'payload-cell' }, pre);
      if (e.payloadChars) {
        const more = el('button', { type: 'button', class: 'ghost small', text: `Show all ${e.payloadChars.toLocaleString()} characters` });
        more.addEventListener('click', async () => {
          try {
            const full = await api('instance/event', { id: instanceId, seq: e.seq });
            pre.textContent = pretty(full.payload);
            more.remove();
          } catch (err) { toast(err.message, true); }
        });
        cell.append(more);
      }
      details.push(cell);
    }
    return el('tr', { dataset: { type: e.type } },
      el('td', { class: 'num faint', text: String(e.seq + 1) }),
      el('td', { class: 'nowrap', text: fmtTime(e.timestamp) }),
      el('td', { class: 'nowrap num faint', text: e.timestamp !== null && t0 !== null ? '+' + fmtDuration(e.timestamp - t0) : '' }),
      el('td', { class: 'ev-type nowrap', text: e.type }),
      el('td', { text: e.name || '' }),
      el('td', { class: 'num', text: e.taskId === undefined ? '' : String(e.taskId) }),
      el('td', {}, details));
  });
  return el('div', {},
    el('div', { class: 'table-wrap' }, el('table', { class: 'data', id: 'history-table' },
      el('thead', {}, el('tr', {}, ['#', 'Time', 'Elapsed', 'Event', 'Name', 'Task', 'Details'].map((h, i) =>
        el('th', { class: [0, 2, 5].includes(i) ? 'num' : 'nowrap', text: h })))),
      el('tbody', {}, rows))),
    count > events.length ? el('div', { class: 'tl-more', text: `Showing the first ${events.length} of ${count} events.` }) : null);
}

const ACTIONS = {
  'raise-event': {
    label: 'Raise event', title: 'Raise an event', message: 'Send an external event to', confirm: 'Raise event',
    when: (s) => !TERMINAL.has(s),
    fields: [
      { name: 'eventName', label: 'Event name', required: true, placeholder: 'e.g. Approval' },
      { name: 'eventData', label: 'Event data (JSON, optional)', type: 'textarea', json: true, placeholder: '{"approved": true}' },
    ],
    done: (id) => `Event sent to ${id}`,
  },
  suspend: {
    label: 'Suspend', title: 'Suspend this instance?', message: 'It keeps its events but takes no turns until resumed:', confirm: 'Suspend',
    when: (s) => s === 'Running' || s === 'Pending', fields: [{ name: 'reason', label: 'Reason (optional)' }],
    done: (id) => `Suspended ${id}`,
  },
  resume: {
    label: 'Resume', title: 'Resume this instance?', message: 'It continues where it stopped:', confirm: 'Resume',
    when: (s) => s === 'Suspended', fields: [{ name: 'reason', label: 'Reason (optional)' }],
    done: (id) => `Resumed ${id}`,
  },
  terminate: {
    label: 'Terminate', title: 'Terminate this instance?', message: 'It stops for good, with the reason as its output:', confirm: 'Terminate', danger: true,
    when: (s) => !TERMINAL.has(s),
    fields: [{ name: 'reason', label: 'Reason (optional)' }, { name: 'recursive', label: 'Also terminate its sub-orchestrations', type: 'checkbox' }],
    done: (id) => `Terminated ${id}`,
  },
  rewind: {
    label: 'Rewind', title: 'Rewind this instance?', message: 'Its failed tasks run again; what succeeded is kept:', confirm: 'Rewind',
    when: (s) => s === 'Failed', fields: [{ name: 'reason', label: 'Reason (optional)' }],
    done: (id) => `Rewound ${id}`,
  },
  restart: {
    label: 'Restart', title: 'Restart this instance?', message: 'It starts again from the beginning with its original input:', confirm: 'Restart',
    when: (s) => TERMINAL.has(s), fields: [{ name: 'newInstanceId', label: 'Start it under a new instance ID', type: 'checkbox' }],
    done: (id) => `Restarted as ${id}`,
  },
  purge: {
    label: 'Purge', title: 'Purge this instance?', message: 'Its state and history are deleted for good:', confirm: 'Purge', danger: true,
    when: (s) => TERMINAL.has(s), fields: [{ name: 'recursive', label: 'Also purge its sub-orchestrations', type: 'checkbox' }],
    done: (id) => `Purged ${id}`,
  },
};

async function runAction(name, instanceId) {
  const action = ACTIONS[name];
  const result = await dialog({
    title: action.title, message: action.message, target: instanceId, fields: action.fields,
    confirm: action.confirm, danger: action.danger,
    run: (values) => api('instance/' + name, undefined, { instanceId, ...values }),
  });
  if (!result) return;
  toast(action.done(result.instanceId || instanceId));
  if (name === 'purge') {
    history.pushState({ stack: [] }, '', link('./'));
    return route();
  }
  if (name === 'restart' && result.instanceId && result.instanceId !== instanceId) {
    history.pushState({}, '', link('instance', { id: result.instanceId }));
    return route();
  }
  if (state.rerender) state.rerender();
}

export async function renderInstance(id) {
  const main = clear(document.getElementById('main'));
  if (!id) return showError(new ApiError('No instance ID was given.', 400));
  const head = el('div');
  const body = el('div');
  append(main, [head, body]);
  let firstLoad = true;

  const load = async () => {
    let data;
    try {
      data = await api('instance', { id });
    } catch (e) {
      if (firstLoad || e instanceof AuthError) { stopRefresh(); return showError(e); }
      toast(e.message, true);
      return;
    }
    firstLoad = false;
    const inst = data.instance;
    const hist = data.history;
    const running = !inst.terminal;
    const end = inst.completedAt || (running ? data.now : inst.lastUpdatedAt);
    document.title = `${inst.instanceId} · ${state.info.title}`;

    const buttons = Object.entries(ACTIONS).map(([name, action]) => el('button', {
      type: 'button', id: 'action-' + name, class: action.danger ? 'danger' : null, text: action.label,
      disabled: !action.when(inst.status), title: action.when(inst.status) ? null : `Not possible while ${inst.status}`,
      on: { click: () => runAction(name, inst.instanceId) },
    }));
    clear(head).append(el('div', { class: 'page-head' },
      el('div', { class: 'grow' },
        el('div', { class: 'crumbs' }, el('a', { href: link('./'), text: 'Orchestrations' }), ' / ', inst.name),
        el('div', { class: 'title-line' }, el('h1', { class: 'instance-id', text: inst.instanceId }),
          el('span', { id: 'instance-status' }, badge(inst.status, true))),
        el('div', { class: 'sub' }, inst.name, inst.version ? ` · version ${inst.version}` : '')),
      el('div', { class: 'actions' }, buttons, el('span', { class: 'sep' }), refreshSwitch(load),
        el('button', { type: 'button', class: 'ghost', id: 'refresh', text: 'Refresh', on: { click: load } }))));

    const children = hist.children || [];
    const parent = inst.parentInstanceId;
    const tags = (inst.tags || []).map(([k, v]) => `${k}=${v}`).join(', ');
    const overview = el('div', { class: 'card' }, el('dl', { class: 'facts' },
      fact('Name', inst.name),
      fact('Status', badge(inst.status)),
      fact('Created', fmtTime(inst.createdAt)),
      fact(running ? 'Running for' : 'Duration', inst.createdAt ? fmtDuration(end - inst.createdAt) : null),
      fact('Last updated', fmtTime(inst.lastUpdatedAt)),
      fact('Completed', inst.completedAt ? fmtTime(inst.completedAt) : null),
      fact('Version', inst.version),
      fact('Execution ID', inst.executionId ? el('span', { class: 'mono', text: inst.executionId }) : null),
      fact('Parent', parent ? el('a', { class: 'mono', id: 'parent-link', href: link('instance', { id: parent }), text: parent }) : null),
      fact('Sub-orchestrations', children.length ? String(children.length) : null),
      fact('History events', String(hist.eventCount)),
      fact(inst.scheduledStartAt ? 'Scheduled start' : 'Tags', inst.scheduledStartAt ? fmtTime(inst.scheduledStartAt) : tags)));

    const failure = inst.failure
      ? el('div', { class: 'failure', id: 'failure' },
        el('div', { class: 'failure-head' }, el('span', { text: 'Failure' })),
        el('div', { class: 'failure-body' }, failureView(inst.failure)))
      : null;

    const payloads = el('div', { class: 'grid-3 stack' },
      payloadCard('Input', inst.input, 'input'),
      payloadCard('Output', inst.output, 'output'),
      payloadCard('Custom status', inst.customStatus, 'custom-status'));

    const timelineCard = el('div', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Timeline ', el('span', { class: 'count', text: `${hist.timeline.spans.length}` })),
        el('div', { class: 'grow' }), legend(hist.timeline.spans)),
      el('div', { class: 'card-body flush' }, timelineView(hist.timeline, data.now, running)));

    const childCard = children.length ? el('div', { class: 'card', id: 'children' },
      el('div', { class: 'card-head' }, el('h2', {}, 'Sub-orchestrations ', el('span', { class: 'count', text: String(children.length) }))),
      el('div', { class: 'table-wrap' }, el('table', { class: 'data' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Instance ID' }), el('th', { text: 'Name' }), el('th', { text: 'Outcome' }))),
        el('tbody', {}, children.map((c) => el('tr', {},
          el('td', { class: 'id' }, el('a', { href: link('instance', { id: c.instanceId }), text: c.instanceId })),
          el('td', { text: c.name }),
          el('td', { class: 'faint', text: c.status }))))))) : null;

    const historyCard = el('div', { class: 'card' },
      el('div', { class: 'card-head' }, el('h2', {}, 'History ', el('span', { class: 'count', text: String(hist.eventCount) }))),
      el('div', { class: 'card-body flush' }, historyTable(inst.instanceId, hist.events, hist.eventCount, hist.timeline.start)));

    // Keep the reader's place and open details across refreshes.
    const scroll = window.scrollY;
    clear(body);
    append(body, [overview, failure, payloads, timelineCard, childCard, historyCard]);
    window.scrollTo(0, scroll);
    if (!running && state.timer) stopRefresh();
    ready();
  };
  startRefresh(load);
  return load();
}
