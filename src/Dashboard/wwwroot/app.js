// MlFunctions dashboard: a hash-routed page over the host's JSON API. The key is asked once, kept in
// localStorage and sent as the x-functions-key header; it never goes into a URL.
(function () {
  'use strict';
  const KEY = 'mlf-api-key';
  const HEADER = 'x-functions-key';
  const main = document.getElementById('main');
  const banner = document.getElementById('banner');
  const keyform = document.getElementById('keyform');
  // The API sits at the site root: the local host serves the pages at / (and /dashboard/), the Functions app at /dashboard/.
  const ROOT = location.pathname.replace(/dashboard\/(index\.html)?$/, '').replace(/[^/]*$/, '');
  let poll = null;          // the live-update timer of the page shown, cleared on navigation
  let charts = [];          // uPlot instances to destroy on navigation

  class ApiError extends Error {
    constructor(kind, message, status) { super(message); this.kind = kind; this.status = status; }
  }

  function getKey() { return localStorage.getItem(KEY) || ''; }
  function setKey(k) { if (k) localStorage.setItem(KEY, k); else localStorage.removeItem(KEY); showKeyState(); }
  function showKeyState() { document.getElementById('keystate').textContent = getKey() ? 'key set' : 'no key'; }

  async function api(path, options) {
    const key = getKey();
    if (!key) throw new ApiError('nokey', 'Enter the API key to see this page. The host prints where its key is kept when it starts (or set Local:ApiKey).');
    let response;
    try {
      response = await fetch(ROOT + path, Object.assign({ cache: 'no-store' }, options || {}, {
        headers: Object.assign({ [HEADER]: key, 'accept': 'application/json' }, (options && options.headers) || {}),
      }));
    } catch (e) {
      throw new ApiError('down', 'The host at ' + location.origin + ' did not answer (' + e.message + '). Is it running? Start it with: mlf serve (in a checkout: dotnet run --project src/Local -c Release -- serve).');
    }
    let body = null;
    const text = await response.text();
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (response.status === 401) throw new ApiError('badkey', 'The API key was refused (401). Enter the host\'s function key again.', 401);
    if (!response.ok) {
      const message = (body && body.error) || text || response.statusText;
      throw new ApiError(response.status === 404 ? 'notfound' : 'http', message + ' (HTTP ' + response.status + ')', response.status);
    }
    return body;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  // main's content; children as h() takes them (nested arrays, null skipped).
  function show(...children) { main.replaceChildren(...children.flat(Infinity).filter(c => c != null && c !== false).map(c => c instanceof Node ? c : document.createTextNode(String(c)))); }
  // Parameters arrive as JSON numbers or as numeric strings; either sorts and plots as a number.
  const num = (v) => typeof v === 'number' ? v : (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v)) ? Number(v) : v);
  const pill = (state) => h('span', { class: 'pill s-' + state, 'data-state': state }, state);
  const fmtTime = (t) => t ? new Date(t).toLocaleString() : '';
  function fmtDuration(ms) {
    if (ms == null || isNaN(ms)) return '';
    if (ms < 1000) return ms + ' ms';
    const s = ms / 1000;
    return s < 120 ? s.toFixed(1) + ' s' : (s / 60).toFixed(1) + ' min';
  }
  const fmtNum = (v) => { v = num(v); return v == null ? '' : (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v)); };
  const short = (d) => d ? String(d).replace(/^sha256:/, '').slice(0, 12) : '';
  const enc = encodeURIComponent;

  function clearBanner() { banner.hidden = true; banner.textContent = ''; }
  function showError(e) {
    banner.hidden = false;
    banner.dataset.kind = e.kind || 'error';
    banner.textContent = e.message;
    if (e.kind === 'nokey' || e.kind === 'badkey') { keyform.hidden = false; document.getElementById('keyinput').focus(); }
  }
  function empty(text) { return h('div', { class: 'empty' }, text); }

  function sortableTable(columns, rows, opts) {
    let sortBy = opts && opts.sortBy, dir = (opts && opts.dir) || 1;
    const table = h('table', { id: opts && opts.id });
    const wrap = h('div', { class: 'tablewrap' }, table);
    function render() {
      table.textContent = '';
      const sorted = sortBy == null ? rows : [...rows].sort((a, b) => {
        const col = columns.find(c => c.key === sortBy);
        const x = col.value(a), y = col.value(b);
        if (x == null && y == null) return 0; if (x == null) return 1; if (y == null) return -1;
        return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
      });
      table.appendChild(h('thead', null, h('tr', null, columns.map(c => h('th', {
        class: c.sort === false ? null : 'sortable', 'data-key': c.key,
        onclick: c.sort === false ? null : () => { if (sortBy === c.key) dir = -dir; else { sortBy = c.key; dir = 1; } render(); },
      }, c.title + (sortBy === c.key ? (dir > 0 ? ' ▲' : ' ▼') : ''))))));
      table.appendChild(h('tbody', null, sorted.map(r => {
        const tr = h('tr', null, columns.map(c => h('td', { class: c.num ? 'num' : null }, c.render ? c.render(r) : fmtNum(c.value(r)))));
        if (opts && opts.rowAttrs) opts.rowAttrs(r, tr);
        return tr;
      })));
    }
    render();
    return wrap;
  }

  // ---- Runs ----
  async function runsPage(params) {
    const pipeline = params.get('pipeline') || '', state = params.get('state') || '';
    const query = new URLSearchParams();
    if (pipeline) query.set('pipeline', pipeline);
    if (state) query.set('state', state);
    const filters = h('form', { class: 'filters', onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      const p = ev.target.pipeline.value.trim(), s = ev.target.state.value;
      if (p) q.set('pipeline', p); if (s) q.set('state', s);
      location.hash = '#/runs' + (q.toString() ? '?' + q : '');
    } },
      h('label', null, 'Pipeline ', h('input', { name: 'pipeline', value: pipeline, placeholder: 'any' })),
      h('label', null, 'State ', h('select', { name: 'state' }, ['', 'Running', 'Completed', 'Failed', 'Terminated', 'Pending'].map(s =>
        h('option', { value: s, selected: s === state }, s || 'any')))),
      h('button', { type: 'submit' }, 'Filter'));
    show(h('h1', null, 'Pipeline runs'), filters, h('p', { class: 'muted' }, 'Loading…'));
    const body = await api('api/pipelines/runs' + (query.toString() ? '?' + query : ''));
    const runs = body.runs || [];
    const content = runs.length === 0
      ? empty(pipeline || state ? 'No runs match these filters.' : 'No pipeline runs yet. Start one with POST api/pipelines/{name}/runs.')
      : sortableTable([
        { key: 'runId', title: 'Run', value: r => r.runId, render: r => h('a', { href: '#/runs/' + enc(r.runId) }, r.runId) },
        { key: 'pipeline', title: 'Pipeline', value: r => r.pipeline },
        { key: 'state', title: 'State', value: r => r.state, render: r => pill(r.state) },
        { key: 'step', title: 'Step', value: r => r.progress && r.progress.step, render: r => r.progress ? r.progress.step + ' (' + r.progress.stepsRecorded + '/' + r.progress.stepsTotal + ')' : '' },
        { key: 'createdAt', title: 'Started', value: r => r.createdAt, render: r => fmtTime(r.createdAt) },
        { key: 'duration', title: 'Duration', num: true, value: r => new Date(r.lastUpdatedAt) - new Date(r.createdAt), render: r => fmtDuration(new Date(r.lastUpdatedAt) - new Date(r.createdAt)) },
        { key: 'failure', title: 'Failure', value: r => r.failure, render: r => r.failure ? h('span', { class: 'error' }, r.failure) : '' },
      ], runs, { id: 'runs-table', rowAttrs: (r, tr) => tr.setAttribute('data-run', r.runId) });
    show(h('h1', null, 'Pipeline runs'), filters, h('p', { class: 'muted', id: 'run-count' }, runs.length + ' run(s)'), content);
    if (runs.some(r => r.state === 'Running' || r.state === 'Pending')) poll = setTimeout(route, 5000);
  }

  async function runPage(id) {
    show(h('h1', null, 'Run ' + id), h('p', { class: 'muted' }, 'Loading…'));
    let run;
    try { run = await api('api/pipelines/runs/' + enc(id)); }
    catch (e) {
      if (e.kind === 'notfound') {
        show(h('h1', null, 'Run ' + id), h('div', { class: 'empty', id: 'run-missing' },
          'There is no pipeline run "' + id + '" (no lineage recorded). It may not have started a step yet, or the id is wrong. ',
          h('a', { href: '#/runs' }, 'Back to the runs')));
        return;
      }
      throw e;
    }
    const listed = (await api('api/pipelines/runs').catch(() => ({ runs: [] }))).runs.find(r => r.runId === id);
    const steps = run.steps || [];
    const t0 = Math.min(...steps.map(s => Date.parse(s.startedAt)));
    const t1 = Math.max(...steps.map(s => Date.parse(s.endedAt)));
    const span = Math.max(1, t1 - t0);
    const graph = h('div', { class: 'steps', id: 'step-graph' }, steps.map((s, i) => [
      i ? h('span', { class: 'arrow' }, '→') : null,
      h('div', { class: 'step ' + s.status + (s.cached ? ' isCached' : ''), 'data-step': s.step },
        h('strong', null, s.step), h('br'), pill(s.status), ' ', s.cached ? h('span', { class: 'pill cached' }, 'cached') : null,
        h('div', { class: 'muted' }, fmtDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt)) + (s.attempts > 1 ? ' · ' + s.attempts + ' attempts' : ''))),
    ]));
    const timeline = h('div', { class: 'timeline', id: 'timeline' }, steps.map(s => h('div', { class: 'tl-row' },
      h('span', { class: 'name' }, s.step),
      h('div', { class: 'tl-track' }, h('div', {
        class: 'tl-bar ' + s.status + (s.cached ? ' cached' : ''), title: s.step + ': ' + fmtDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt)),
        style: 'left:' + (100 * (Date.parse(s.startedAt) - t0) / span) + '%;width:' + (100 * (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / span) + '%',
      })))));
    const table = sortableTable([
      { key: 'sequence', title: '#', num: true, value: s => s.sequence },
      { key: 'step', title: 'Step', value: s => s.step, render: s => [h('strong', null, s.step), h('div', { class: 'muted' }, s.target + ' · code ' + s.codeVersion)] },
      { key: 'status', title: 'State', value: s => s.status, render: s => [pill(s.status), s.cached ? [' ', h('span', { class: 'pill cached' }, 'cached')] : null] },
      { key: 'duration', title: 'Duration', num: true, value: s => Date.parse(s.endedAt) - Date.parse(s.startedAt), render: s => fmtDuration(Date.parse(s.endedAt) - Date.parse(s.startedAt)) },
      { key: 'attempts', title: 'Attempts', num: true, value: s => s.attempts, render: s => s.attempts > 1 ? s.attempts + ' (' + (s.attempts - 1) + ' retries)' : String(s.attempts) },
      { key: 'inputs', title: 'Input digests', sort: false, value: () => null, render: s => Object.entries(s.inputs || {}).map(([k, v]) => h('div', { class: 'digest', title: v }, k + ': ' + short(v))) },
      { key: 'output', title: 'Output digest', sort: false, value: () => null, render: s => [
        s.outputDigest ? h('div', { class: 'digest', title: s.outputDigest }, short(s.outputDigest)) : null,
        s.cachedFromRunId ? h('div', null, 'from ', h('a', { href: '#/runs/' + enc(s.cachedFromRunId) }, s.cachedFromRunId)) : null,
        s.error ? h('div', { class: 'error' }, s.error) : null] },
    ], steps, { id: 'steps-table', rowAttrs: (s, tr) => tr.setAttribute('data-step', s.step) });
    const model = listed && listed.pipeline;
    show(
      h('h1', null, 'Run ', h('code', null, id), ' ', listed ? pill(listed.state) : null),
      h('p', { class: 'muted', id: 'run-summary' }, steps.length + ' steps: ' + run.executed + ' executed, ' + run.cached + ' cached, ' + run.skipped + ' skipped, ' + run.failed + ' failed · ' + fmtDuration(span)),
      listed && listed.failure ? h('div', { class: 'card error', id: 'run-failure' }, listed.failure) : null,
      h('p', null, model ? h('a', { href: '#/models/' + enc(model), id: 'model-link' }, 'Model ' + model) : null, ' · ',
        h('a', { href: '#/sweeps' }, 'Sweeps'), ' · ', h('a', { href: '#/runs/' + enc(id) + '/report' }, 'Report')),
      h('h2', null, 'Steps'), graph, timeline, table);
    if (listed && (listed.state === 'Running' || listed.state === 'Pending')) poll = setTimeout(route, 5000);
  }

  async function reportPage(id) {
    const key = getKey();
    if (!key) throw new ApiError('nokey', 'Enter the API key to see this page.');
    const r = await fetch('api/pipelines/runs/' + enc(id) + '/report', { headers: { [HEADER]: key } })
      .catch(e => { throw new ApiError('down', 'The host did not answer (' + e.message + ').'); });
    if (r.status === 401) throw new ApiError('badkey', 'The API key was refused (401).');
    const text = await r.text();
    show(h('h1', null, 'Report of ', h('a', { href: '#/runs/' + enc(id) }, id)),
      r.ok ? h('pre', { class: 'card', style: 'white-space:pre-wrap' }, text) : empty(((JSON.parse(text || '{}')).error) || 'No report.'));
  }

  // ---- Sweeps ----
  async function sweepsPage() {
    const body = await api('api/sweeps');
    const sweeps = body.sweeps || [];
    show(h('h1', null, 'Sweeps'), sweeps.length === 0 ? empty('No sweeps yet. A pipeline run starts one, or POST api/sweeps.') :
      sortableTable([
        { key: 'sweepId', title: 'Sweep', value: s => s.sweepId, render: s => h('a', { href: '#/sweeps/' + enc(s.sweepId) }, s.sweepId) },
        { key: 'name', title: 'Name', value: s => s.name },
        { key: 'algorithm', title: 'Algorithm', value: s => s.algorithm },
        { key: 'objective', title: 'Objective', value: s => s.objective && (s.objective.metric + ' ' + s.objective.direction) },
        { key: 'status', title: 'Status', value: s => s.status, render: s => pill(s.status) },
        { key: 'trialCount', title: 'Trials', num: true, value: s => s.trialCount },
        { key: 'best', title: 'Best', num: true, value: s => s.best && s.best.objective, render: s => s.best ? fmtNum(s.best.objective) : '' },
        { key: 'createdAt', title: 'Created', value: s => s.createdAt, render: s => fmtTime(s.createdAt) },
      ], sweeps, { id: 'sweeps-table' }));
  }

  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  // The trial rows are run summaries (one listing in the store); curves are fetched for the chosen trials only.
  async function sweepPage(id, params) {
    const [sweep, trialsBody] = await Promise.all([api('api/sweeps/' + enc(id)), api('api/sweeps/' + enc(id) + '/trials')]);
    const trials = trialsBody.trials || [];
    const objective = trialsBody.objective || {};
    const chosen = (params.get('trials') || '').split(',').filter(Boolean);
    if (chosen.length === 0) chosen.push(...trials.filter(t => t.objective != null).slice(0, 3).map(t => t.runId));
    if (chosen.length === 0 && trials.length) chosen.push(trials[0].runId);
    const allParams = [...new Set(trials.flatMap(t => Object.keys(t.params || {})))].sort();
    // Columns (and parallel axes) for the parameters the trials differ in; the rest (model, data hash, …) once, above.
    // A pipeline's trial has ~25 params of which a sweep varies a few: 200 rows × ~20 identical cells are neither read nor cheap.
    const differs = (p) => new Set(trials.map(t => String((t.params || {})[p]))).size > 1;
    const paramNames = trials.length > 1 ? allParams.filter(differs) : [];
    const sameParams = allParams.filter(p => !paramNames.includes(p));
    const running = trials.some(t => t.status === 'running') || /running|pending/i.test(String(sweep.status));
    const toggle = (runId) => {
      const set = new Set(chosen); if (set.has(runId)) set.delete(runId); else set.add(runId);
      location.hash = '#/sweeps/' + enc(id) + '?trials=' + [...set].join(',');
    };
    const table = trials.length === 0 ? empty('This sweep has no trials yet.') : sortableTable([
      { key: 'chosen', title: 'Plot', sort: false, value: () => null, render: t => h('input', { type: 'checkbox', checked: chosen.includes(t.runId), onchange: () => toggle(t.runId), 'aria-label': 'plot ' + t.runId }) },
      { key: 'rank', title: 'Rank', num: true, value: t => t.rank },
      { key: 'runId', title: 'Trial', value: t => t.runId, render: t => h('code', { title: t.runId }, t.runId.startsWith(id + '-') ? t.runId.slice(id.length + 1) : t.runId) },
      { key: 'status', title: 'Status', value: t => t.status, render: t => [pill(t.status), t.status === 'earlyStopped' ? h('span', { class: 'early', title: 'stopped early by the sweep' }, ' ✂') : null] },
      { key: 'objective', title: (objective.metric || 'objective') + (objective.direction ? ' (' + objective.direction + ')' : ''), num: true, value: t => t.objective },
      ...paramNames.map(p => ({ key: 'p:' + p, title: p, num: true, value: t => num((t.params || {})[p]) })),
      { key: 'duration', title: 'Duration', num: true, value: t => t.endTime ? Date.parse(t.endTime) - Date.parse(t.startTime) : null, render: t => t.endTime ? fmtDuration(Date.parse(t.endTime) - Date.parse(t.startTime)) : '' },
      { key: 'error', title: 'Error', value: t => t.error, render: t => t.error ? h('span', { class: 'error' }, t.error) : '' },
    ], trials, { id: 'trials-table', rowAttrs: (t, tr) => { tr.setAttribute('data-trial', t.runId); tr.setAttribute('data-status', t.status); if (chosen.includes(t.runId)) tr.className = 'selected'; } });

    const curves = h('div', { id: 'curves' });
    show(
      h('h1', null, 'Sweep ', h('code', null, id), ' ', pill(sweep.status)),
      h('p', { class: 'muted', id: 'sweep-summary' }, (trialsBody.total > trials.length ? 'the best ' + trials.length + ' of ' + trialsBody.total : trials.length) + ' trials · ' + (sweep.spec ? sweep.spec.algorithm : '') + ' · objective ' + (objective.metric || '?') + ' ' + (objective.direction || '') +
        (trials.some(t => t.status === 'earlyStopped') ? ' · ' + trials.filter(t => t.status === 'earlyStopped').length + ' stopped early (✂)' : '') + (running ? ' · updating live' : '')),
      h('h2', null, 'Trials'),
      sameParams.length && trials.length ? h('p', { class: 'muted', id: 'same-params' }, (trials.length > 1 ? 'Same in every trial: ' : 'Parameters: ') +
        sameParams.map(p => { const v = fmtNum((trials[0].params || {})[p]); return p + '=' + (v.length > 24 ? v.slice(0, 12) + '…' : v); }).join(' · ')) : null,
      table,
      h('h2', null, 'Per-epoch curves of the chosen trials ', chosen.length >= 2 && chosen.length <= 5 ? h('a', { href: '#/compare?runs=' + chosen.map(enc).join(','), id: 'compare-link', style: 'font-size:13px;font-weight:normal' }, 'Compare these ' + chosen.length) : null), curves,
      paramNames.length && trials.some(t => t.objective != null) ? [h('h2', null, 'Parallel coordinates'), parallel(trials, paramNames, objective)] : null);

    const histories = await Promise.all(chosen.map(t => api('api/sweeps/' + enc(id) + '/trials/' + enc(t) + '/metrics').catch(e => ({ trial: t, error: e.message, metrics: {} }))));
    const metricNames = [...new Set(histories.flatMap(x => Object.keys(x.metrics || {})))].sort();
    if (metricNames.length === 0) curves.appendChild(empty(chosen.length ? 'No per-epoch metrics recorded for the chosen trials yet.' : 'Tick trials in the table to plot their curves.'));
    const grid = h('div', { class: 'grid2' });
    curves.appendChild(grid);
    for (const metric of metricNames) {
      const steps = [...new Set(histories.flatMap(x => (x.metrics[metric] || []).map(p => p.step)))].sort((a, b) => a - b);
      const data = [steps, ...histories.map(x => { const m = new Map((x.metrics[metric] || []).map(p => [p.step, p.value])); return steps.map(s => m.has(s) ? m.get(s) : null); })];
      const holder = h('div', { class: 'chart', 'data-metric': metric, 'data-points': histories.map(x => (x.metrics[metric] || []).length).join(',') });
      grid.appendChild(holder);
      charts.push(new uPlot({
        title: metric, width: 600, height: 240,
        scales: { x: { time: false } },
        axes: [{ label: 'epoch' }, { size: 70 }],
        series: [{ label: 'epoch' }, ...histories.map((x, i) => ({ label: x.trial.startsWith(id + '-') ? x.trial.slice(id.length + 1) : x.trial, stroke: palette[i % palette.length], width: 2, spanGaps: true, points: { show: true } }))],
      }, data, holder));
    }
    if (running) poll = setTimeout(route, 3000);
  }

  // Parallel coordinates on a canvas: one axis per numeric parameter, the objective last; lines coloured by objective.
  function parallel(trials, paramNames, objective) {
    const done = trials.filter(t => t.objective != null);
    const axes = [...paramNames.filter(p => done.every(t => typeof num((t.params || {})[p]) === 'number')), '__objective'];
    const width = 1200, height = 260, pad = 40;
    const canvas = h('canvas', { width, height, id: 'parallel', class: 'chart' });
    const ctx = canvas.getContext('2d');
    const value = (t, a) => a === '__objective' ? t.objective : num(t.params[a]);
    const ranges = axes.map(a => { const v = done.map(t => value(t, a)); return [Math.min(...v), Math.max(...v)]; });
    const x = (i) => pad + i * (width - 2 * pad) / Math.max(1, axes.length - 1);
    const y = (i, v) => { const [lo, hi] = ranges[i]; return height - pad - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (height - 2 * pad); };
    const [olo, ohi] = ranges[axes.length - 1];
    const better = objective.direction === 'minimize' ? (v) => (ohi - v) / ((ohi - olo) || 1) : (v) => (v - olo) / ((ohi - olo) || 1);
    ctx.font = '12px sans-serif'; ctx.fillStyle = '#1d2330';
    axes.forEach((a, i) => {
      ctx.strokeStyle = '#9aa5b8'; ctx.beginPath(); ctx.moveTo(x(i), pad); ctx.lineTo(x(i), height - pad); ctx.stroke();
      ctx.textAlign = 'center'; ctx.fillText(a === '__objective' ? (objective.metric || 'objective') : a, x(i), pad - 20);
      ctx.fillText(fmtNum(ranges[i][1]), x(i), pad - 6); ctx.fillText(fmtNum(ranges[i][0]), x(i), height - pad + 14);
    });
    for (const t of done) {
      const q = better(t.objective);
      ctx.strokeStyle = 'rgba(' + Math.round(220 * (1 - q)) + ',' + Math.round(60 + 120 * q) + ',' + Math.round(200 * q) + ',0.8)';
      ctx.lineWidth = t.status === 'earlyStopped' ? 1 : 2;
      ctx.setLineDash(t.status === 'earlyStopped' ? [4, 3] : []);
      ctx.beginPath(); axes.forEach((a, i) => { const px = x(i), py = y(i, value(t, a)); if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py); }); ctx.stroke();
    }
    return canvas;
  }

  // ---- Models ----
  async function modelsPage() {
    const body = await api('api/registry/models');
    const models = body.models || [];
    show(h('h1', null, 'Registered models'), models.length === 0 ? empty('No registered models yet. A pipeline run that promotes a model registers it.') :
      sortableTable([
        { key: 'name', title: 'Model', value: m => m.name, render: m => h('a', { href: '#/models/' + enc(m.name) }, m.name) },
        { key: 'latestVersion', title: 'Latest version', num: true, value: m => m.latestVersion },
        { key: 'versions', title: 'Versions', num: true, value: m => (m.versions || []).length },
        { key: 'aliases', title: 'Aliases', sort: false, value: () => null, render: m => Object.entries(m.aliases || {}).map(([a, v]) => h('span', { class: 'pill', 'data-alias': a }, a + ' → v' + v + ' ')) },
      ], models, { id: 'models-table' }));
  }

  async function modelPage(name) {
    let listed;
    try { listed = await api('api/registry/models/' + enc(name) + '/versions'); }
    catch (e) {
      if (e.kind === 'notfound') { show(h('h1', null, 'Model ' + name), h('div', { class: 'empty', id: 'model-missing' }, 'There is no registered model "' + name + '". ', h('a', { href: '#/models' }, 'Back to the models'))); return; }
      throw e;
    }
    const models = (await api('api/registry/models')).models || [];
    const aliases = (models.find(m => m.name === name) || {}).aliases || {};
    const versions = (listed.versions || []).slice().sort((a, b) => b.version - a.version);
    const aliasesOf = (v) => Object.entries(aliases).filter(([, n]) => n === v).map(([a]) => a);
    const metricNames = [...new Set(versions.flatMap(v => Object.keys(v.metrics || {})))].sort();
    const moveAlias = async (alias, version) => {
      const current = aliases[alias];
      const question = current == null ? 'Point a new alias "' + alias + '" of ' + name + ' at version ' + version + '?' :
        'Move alias "' + alias + '" of ' + name + ' from version ' + current + ' to version ' + version + '? Serving follows the alias at once.';
      if (!window.confirm(question)) return;
      try {
        const doc = await api('api/registry/models/' + enc(name) + '/aliases/' + enc(alias)).catch(e => { if (e.kind === 'notfound') return null; throw e; });
        await api('api/registry/models/' + enc(name) + '/aliases/' + enc(alias), {
          method: 'PUT', body: JSON.stringify({ version }),
          headers: Object.assign({ 'content-type': 'application/json' }, doc && doc.etag ? { 'if-match': doc.etag } : { 'if-none-match': '*' }),
        });
        route();
      } catch (e) { showError(e); }
    };
    const sig = (list) => (list || []).map(t => h('div', null, h('code', null, t.name + ' ' + t.datatype + ' [' + (t.shape || []).join(', ') + ']')));
    show(
      h('h1', null, 'Model ', h('code', null, name)),
      h('p', { id: 'aliases' }, 'Aliases: ', Object.keys(aliases).length ? Object.entries(aliases).map(([a, v]) => h('span', { class: 'pill', 'data-alias': a, 'data-version': v }, a + ' → v' + v + ' ')) : 'none'),
      sortableTable([
        { key: 'version', title: 'Version', num: true, value: v => v.version, render: v => [h('strong', null, 'v' + v.version), ' ', aliasesOf(v.version).map(a => h('span', { class: 'pill s-Completed' }, a))] },
        { key: 'createdAt', title: 'Registered', value: v => v.createdAt, render: v => fmtTime(v.createdAt) },
        ...metricNames.map(m => ({ key: 'm:' + m, title: m, num: true, value: v => (v.metrics || {})[m] })),
        { key: 'signature', title: 'Signature', sort: false, value: () => null, render: v => v.signature ? [h('div', { class: 'muted' }, 'in'), sig(v.signature.inputs), h('div', { class: 'muted' }, 'out'), sig(v.signature.outputs)] : '' },
        { key: 'lineage', title: 'Lineage', sort: false, value: () => null, render: v => [
          v.lineage && v.lineage.pipelineRunId ? h('div', null, 'run ', h('a', { href: '#/runs/' + enc(v.lineage.pipelineRunId) }, v.lineage.pipelineRunId)) : null,
          v.lineage && v.lineage.datasetVersion ? h('div', { class: 'digest' }, 'dataset ' + v.lineage.datasetVersion) : null] },
        { key: 'sha256', title: 'sha256', sort: false, value: v => v.sha256, render: v => h('span', { class: 'digest', title: v.sha256 }, v.sha256) },
        { key: 'alias', title: 'Alias', sort: false, value: () => null, render: v => h('form', { onsubmit: (ev) => { ev.preventDefault(); const a = ev.target.alias.value.trim(); if (a) moveAlias(a, v.version); } },
          h('input', { name: 'alias', size: 9, value: 'champion', 'aria-label': 'alias for v' + v.version }), ' ', h('button', { type: 'submit' }, 'Point here')) },
      ], versions, { id: 'versions-table', rowAttrs: (v, tr) => tr.setAttribute('data-version', v.version) }));
  }


  // ---- Compare: 2-5 runs or trials side by side (params, final metrics, per-epoch curves) ----
  async function comparePage(params) {
    const ids = (params.get('runs') || '').split(',').map(s => s.trim()).filter(Boolean);
    const picker = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/compare?runs=' + ev.target.runs.value.split(/[\s,]+/).filter(Boolean).join(','); } },
      h('label', null, 'Run or trial ids (2–5, comma-separated) ', h('input', { name: 'runs', size: 70, value: ids.join(',') })), h('button', { type: 'submit' }, 'Compare'));
    if (ids.length < 2 || ids.length > 5) {
      show(h('h1', null, 'Compare runs'), picker, empty(ids.length > 5 ? 'Pick at most 5 runs: ' + ids.length + ' were given.' : 'Pick 2 to 5 runs or trials: tick trials on a sweep page and follow "Compare", or type their ids here.'));
      return;
    }
    let body;
    try { body = await api('api/tracking/compare?runs=' + ids.map(enc).join(',')); }
    catch (e) { if (e.kind === 'notfound' || e.kind === 'http') { show(h('h1', null, 'Compare runs'), picker, h('div', { class: 'empty', id: 'compare-missing' }, e.message)); return; } throw e; }
    const runs = body.runs || [];
    const differing = new Set(body.differingParameters || []);
    const side = (title, rows, fmt, id) => h('div', { class: 'tablewrap' }, h('table', { id }, h('thead', null, h('tr', null, h('th', null, title), runs.map(r => h('th', null, h('code', null, r.runId))))),
      h('tbody', null, Object.entries(rows || {}).map(([name, values]) => h('tr', { class: differing.has(name) ? 'selected' : null, 'data-name': name }, h('td', null, name), values.map(v => h('td', { class: 'num' }, fmt(v))))))));
    const curves = h('div', { id: 'compare-curves', class: 'grid2' });
    show(h('h1', null, 'Compare ', runs.length, ' runs'), picker,
      h('p', { class: 'muted' }, runs.map(r => [h('code', null, r.runId), ' ', pill(r.status), r.sweep ? [' sweep ', h('a', { href: '#/sweeps/' + enc(r.sweep) }, r.sweep)] : null, ' · '])),
      h('h2', null, 'Parameters (rows that differ are highlighted)'), side('parameter', body.parameters, v => v == null ? '' : v, 'compare-params'),
      h('h2', null, 'Final metrics'), side('metric', body.metrics, fmtNum, 'compare-metrics'),
      h('h2', null, 'Per-epoch curves'), curves);
    const metricNames = Object.keys(body.metrics || {}).slice(0, 6);
    for (const metric of metricNames) {
      const histories = await Promise.all(runs.map(r => api('api/tracking/runs/' + enc(r.runId) + '/metrics/' + enc(metric)).catch(() => null)));
      const series = histories.map(x => (x && (x.history || x.points || x.values)) || []);
      if (series.every(p => p.length < 2)) continue;
      const steps = [...new Set(series.flatMap(p => p.map(q => q.step)))].sort((a, b) => a - b);
      const data = [steps, ...series.map(p => { const m = new Map(p.map(q => [q.step, q.value])); return steps.map(s => m.has(s) ? m.get(s) : null); })];
      const holder = h('div', { class: 'chart', 'data-metric': metric });
      curves.appendChild(holder);
      charts.push(new uPlot({ title: metric, width: 600, height: 220, scales: { x: { time: false } }, axes: [{ label: 'epoch' }, { size: 70 }],
        series: [{ label: 'epoch' }, ...runs.map((r, i) => ({ label: r.runId, stroke: palette[i % palette.length], width: 2, spanGaps: true }))] }, data, holder));
    }
  }

  // ---- Datasets: versions, validation profile (per-column statistics, value histograms), the fitted transform ----
  async function datasetsPage() {
    const body = await api('api/datasets');
    const rows = (body.datasets || []).flatMap(d => d.versions.map(v => Object.assign({ name: d.name }, v)));
    show(h('h1', null, 'Datasets'), rows.length === 0 ? empty('No registered datasets yet. A pipeline run registers its data as its first step.') :
      sortableTable([
        { key: 'name', title: 'Dataset', value: r => r.name, render: r => h('a', { href: '#/datasets/' + enc(r.name) + '/' + enc(r.version) }, r.name) },
        { key: 'version', title: 'Version', value: r => r.version, render: r => h('code', null, r.version) },
        { key: 'format', title: 'Format', value: r => r.format },
        { key: 'files', title: 'Files', num: true, value: r => r.files },
        { key: 'bytes', title: 'Size', num: true, value: r => r.bytes, render: r => fmtBytes(r.bytes) },
        { key: 'passed', title: 'Validation', value: r => r.passed, render: r => r.validated ? pill(r.passed ? 'Succeeded' : 'Failed') : h('span', { class: 'muted' }, 'not validated') },
        { key: 'createdAt', title: 'Registered', value: r => r.createdAt, render: r => fmtTime(r.createdAt) },
      ], rows, { id: 'datasets-table', sortBy: 'createdAt', dir: -1 }));
  }
  const fmtBytes = (b) => b == null ? '' : b < 1024 ? b + ' B' : b < 1048576 ? (b / 1024).toFixed(1) + ' KB' : (b / 1048576).toFixed(1) + ' MB';

  function bars(entries, id) {
    const max = Math.max(1, ...entries.map(([, n]) => n));
    return h('div', { class: 'bars', id }, entries.map(([label, n]) => h('div', { class: 'bar-row', 'data-value': label },
      h('span', { class: 'bar-label', title: label }, label), h('span', { class: 'bar', style: 'width:' + Math.max(1, Math.round(200 * n / max)) + 'px' }), h('span', { class: 'muted' }, ' ' + n))));
  }

  async function datasetPage(name, version) {
    let d;
    try { d = await api('api/datasets/' + enc(name) + '/versions/' + enc(version)); }
    catch (e) { if (e.kind === 'notfound') { show(h('h1', null, 'Dataset ' + name), h('div', { class: 'empty', id: 'dataset-missing' }, e.message + ' ', h('a', { href: '#/datasets' }, 'Back to the datasets'))); return; } throw e; }
    const report = d.validation;
    const table = report && report.table;
    const checks = report ? sortableTable([
      { key: 'part', title: 'Part', value: c => c.part }, { key: 'check', title: 'Check', value: c => c.check },
      { key: 'passed', title: 'Result', value: c => c.passed, render: c => pill(c.passed ? 'Succeeded' : 'Failed') }, { key: 'detail', title: 'Detail', value: c => c.detail },
    ], report.checks || [], { id: 'checks-table' }) : empty('This version has not been validated.');
    const columns = table ? h('div', { id: 'columns', class: 'grid2' }, (table.columns || []).map(c => h('div', { class: 'card', 'data-column': c.name },
      h('strong', null, c.name), ' ', h('span', { class: 'pill' }, String(c.kind).toLowerCase()), c.name === table.label ? h('span', { class: 'pill s-Running' }, ' label') : null,
      h('div', { class: 'muted' }, c.count + ' values · ' + c.missing + ' missing · ' + c.distinct + ' distinct' +
        (c.mean != null ? ' · min ' + fmtNum(c.min) + ' · mean ' + fmtNum(c.mean) + ' · std ' + fmtNum(c.std) + ' · max ' + fmtNum(c.max) : '')),
      (c.topValues || []).length ? bars(c.topValues.map(kv => [kv.key, kv.value]), null) : null))) : null;
    const parts = report && (report.parts || []).length ? sortableTable([
      { key: 'name', title: 'Part', value: p => p.name }, { key: 'count', title: 'Samples', num: true, value: p => p.count },
      { key: 'shape', title: 'Sample shape', value: p => (p.sampleShape || []).join('×') },
      { key: 'min', title: 'Min', num: true, value: p => p.min }, { key: 'max', title: 'Max', num: true, value: p => p.max },
      { key: 'mean', title: 'Mean', num: true, value: p => p.mean }, { key: 'std', title: 'Std', num: true, value: p => p.std },
      { key: 'nonFinite', title: 'Non-finite', num: true, value: p => p.nonFiniteValues },
      { key: 'labels', title: 'Labels', sort: false, value: () => null, render: p => bars(Object.entries(p.labelCounts || {}), null) },
    ], report.parts, { id: 'parts-table' }) : null;
    const classes = table && table.classCounts ? [h('h2', null, 'Class balance of ', h('code', null, table.label)), bars(Object.entries(table.classCounts), 'class-bars')] : null;
    show(h('h1', null, 'Dataset ', h('code', null, name), ' ', h('code', null, version), ' ', report ? pill(report.passed ? 'Succeeded' : 'Failed') : null),
      h('p', { class: 'muted', id: 'dataset-summary' }, (d.manifest.format || '') + ' · ' + (d.manifest.files || []).length + ' files · ' +
        fmtBytes((d.manifest.files || []).reduce((n, f) => n + (f.bytes || 0), 0)) + (table ? ' · ' + table.rows + ' rows' : '') + (d.manifest.source ? ' · from ' + d.manifest.source : '')),
      h('h2', null, 'Validation checks'), checks, classes, columns ? [h('h2', null, 'Columns'), columns] : null, parts ? [h('h2', null, 'Profile'), parts] : null,
      h('h2', null, 'Fitted transforms'), (d.preparations || []).length === 0 ? empty('No run has prepared this version yet.') :
        h('div', { id: 'transforms' }, d.preparations.map(p => h('div', { class: 'card', 'data-kind': p.transform && p.transform.kind },
          h('strong', null, 'transform ', h('code', null, p.transform ? p.transform.kind : '?')), ' recipe ', h('code', null, short(p.recipeHash)), ' · ',
          (p.splits || []).map(s => s.name + ' ' + s.count).join(' · '),
          h('pre', { class: 'transform' }, JSON.stringify(summarizeTransform(p.transform), null, 1))))),
      h('h2', null, 'Files'), h('div', { class: 'digest' }, (d.manifest.files || []).map(f => h('div', null, f.name + ' · ' + fmtBytes(f.bytes) + ' · ' + short(f.sha256)))));
  }
  // The transform without its long per-user/per-item maps: what a reader checks (kind, scales, columns and their encodings).
  function summarizeTransform(t) {
    if (!t) return null;
    const out = JSON.parse(JSON.stringify(t));
    if (out.interactions) for (const k of Object.keys(out.interactions)) { const v = out.interactions[k]; if (Array.isArray(v) && v.length > 8) out.interactions[k] = v.slice(0, 8).concat(['… ' + v.length + ' in all']); else if (v && typeof v === 'object' && Object.keys(v).length > 8) out.interactions[k] = Object.keys(v).length + ' entries'; }
    if (out.tabular && out.tabular.columns) out.tabular.columns = out.tabular.columns.map(c => { const x = Object.assign({}, c); for (const k of Object.keys(x)) if (Array.isArray(x[k]) && x[k].length > 12) x[k] = x[k].slice(0, 12).concat(['… ' + x[k].length + ' in all']); else if (x[k] && typeof x[k] === 'object' && Object.keys(x[k]).length > 12) x[k] = Object.keys(x[k]).length + ' entries'; return x; });
    return out;
  }

  // ---- Serving: per model, the policy, traffic per version, latency p50/p99 + histogram, error and cache-hit rates ----
  async function servingPage() {
    const models = (await api('api/registry/models')).models || [];
    if (models.length === 0) { show(h('h1', null, 'Serving'), empty('No registered models, so nothing is served yet.')); return; }
    const stats = await Promise.all(models.map(m => Promise.all([
      api('api/serving/' + enc(m.name) + '/stats'),
      api('api/serving/' + enc(m.name) + '/policy').catch(e => { if (e.kind === 'notfound') return null; if (e.kind === 'http') return { error: e.message }; throw e; }),
    ])));
    const pct = (x) => x == null ? '–' : (100 * x).toFixed(1) + ' %';
    const ms = (x) => x == null ? '–' : (x < 10 ? x.toFixed(2) : x.toFixed(0)) + ' ms';
    show(h('h1', null, 'Serving'), h('p', { class: 'muted' }, 'Figures of this host instance since ' + fmtTime(stats[0][0].since) + '.'),
      models.map((m, i) => {
        const [s, policy] = stats[i];
        const versions = s.versions || [];
        // GET policy answers {policy: {policy: RoutingPolicy, etag, generation}, state, test}; show the routing policy.
        const p = policy && policy.error ? policy : policy && policy.policy ? (policy.policy.policy || policy.policy) : null;
        const hist = h('div', { class: 'chart', 'data-model': m.name });
        const node = h('div', { class: 'card', 'data-model': m.name },
          h('h2', null, h('a', { href: '#/models/' + enc(m.name) }, m.name), ' ', Object.entries(m.aliases || {}).map(([a, v]) => h('span', { class: 'pill' }, a + ' → v' + v + ' '))),
          h('p', { class: 'policy' }, 'Policy: ', p && p.error ? h('span', { class: 'muted' }, 'not readable here: ' + p.error) : p ? h('code', { 'data-kind': p.kind }, (p.kind || 'policy') + ' ' + JSON.stringify(Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'kind'))).slice(0, 300)) : 'none (the champion alias serves every request)'),
          versions.length === 0 ? empty('No requests served since this instance started.') : [
            sortableTable([
              { key: 'version', title: 'Version', value: v => v.version, render: v => 'v' + v.version },
              { key: 'requests', title: 'Requests', num: true, value: v => v.requests },
              { key: 'trafficShare', title: 'Traffic', num: true, value: v => v.trafficShare, render: v => pct(v.trafficShare) },
              { key: 'p50Ms', title: 'p50', num: true, value: v => v.p50Ms, render: v => ms(v.p50Ms) },
              { key: 'p99Ms', title: 'p99', num: true, value: v => v.p99Ms, render: v => ms(v.p99Ms) },
              { key: 'errorRate', title: 'Errors (5xx)', num: true, value: v => v.errorRate, render: v => pct(v.errorRate) + ' (' + v.serverErrors + ')' },
              { key: 'clientErrors', title: '4xx', num: true, value: v => v.clientErrors },
              { key: 'cacheHitRate', title: 'Cache hits', num: true, value: v => v.cacheHitRate, render: v => pct(v.cacheHitRate) },
            ], versions, { rowAttrs: (v, tr) => tr.setAttribute('data-version', v.version) }),
            hist]);
        if (versions.length) setTimeout(() => {
          const bounds = s.boundsMs; const xs = bounds.map((_, k) => k).concat([bounds.length]);
          charts.push(new uPlot({ title: 'latency histogram (requests per bucket, ms upper bound)', width: 1100, height: 200, scales: { x: { time: false } },
            axes: [{ values: (u, ticks) => ticks.map(t => t < bounds.length ? '≤' + bounds[t] : '>' + bounds[bounds.length - 1]) }, { size: 60 }],
            series: [{ label: 'bucket' }, ...versions.map((v, k) => ({ label: 'v' + v.version, stroke: palette[k % palette.length], width: 2, paths: uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6 / versions.length] }) : undefined }))] },
            [xs, ...versions.map(v => v.histogram)], hist));
        }, 0);
        return node;
      }));
  }

  // ---- Router ----
  async function route() {
    clearTimeout(poll); poll = null;
    charts.forEach(c => c.destroy()); charts = [];
    clearBanner();
    const hash = location.hash.replace(/^#\/?/, '') || 'runs';
    const [path, qs] = hash.split('?');
    const params = new URLSearchParams(qs || '');
    const parts = path.split('/').map(decodeURIComponent);
    document.querySelectorAll('[data-nav]').forEach(a => a.classList.toggle('active', a.dataset.nav === parts[0]));
    const started = performance.now();
    try {
      if (parts[0] === 'runs' && parts[1] && parts[2] === 'report') await reportPage(parts[1]);
      else if (parts[0] === 'runs' && parts[1]) await runPage(parts[1]);
      else if (parts[0] === 'sweeps' && parts[1]) await sweepPage(parts[1], params);
      else if (parts[0] === 'sweeps') await sweepsPage();
      else if (parts[0] === 'models' && parts[1]) await modelPage(parts[1]);
      else if (parts[0] === 'models') await modelsPage();
      else if (parts[0] === 'datasets' && parts[1]) await datasetPage(parts[1], parts[2] || '');
      else if (parts[0] === 'datasets') await datasetsPage();
      else if (parts[0] === 'serving') await servingPage();
      else if (parts[0] === 'compare') await comparePage(params);
      else await runsPage(params);
      document.body.dataset.rendered = hash;
      document.body.dataset.renderMs = String(Math.round(performance.now() - started));
      // ms since navigation start: the first render of the page's data, as the speed test reads it.
      if (!document.body.dataset.firstRenderAt) document.body.dataset.firstRenderAt = String(Math.round(performance.now()));
    } catch (e) {
      show(empty('This page could not be shown.'));
      showError(e instanceof ApiError ? e : new ApiError('error', 'Unexpected error: ' + e.message));
      document.body.dataset.rendered = 'error:' + hash;
    }
  }

  keyform.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setKey(document.getElementById('keyinput').value.trim());
    document.getElementById('keyinput').value = '';
    keyform.hidden = true;
    route();
  });
  document.getElementById('forget').addEventListener('click', () => { setKey(''); keyform.hidden = false; route(); });
  window.addEventListener('hashchange', route);
  showKeyState();
  route();
})();
