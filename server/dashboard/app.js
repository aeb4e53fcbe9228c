// The dashboard page: subscribes to the server's live feed (/v1/live, server/LIVE.md), lists every
// session, and for the watched one shows its camera thumbnails and its progress, stage and shaped
// reward over the current and the previous episode. Plain browser JavaScript and uPlot (the global
// `uPlot`, served beside this file); no framework, nothing from another origin.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = 'stageward.apiKey';
  /** Points kept per episode in the page (past it every other point is dropped). */
  const MAX_POINTS = 4096;

  const state = {
    ws: null,
    key: sessionStorage.getItem(KEY_STORE) ?? '',
    /** The session watched: chosen by a click, else the first open session. */
    watched: null,
    chosen: false,
    /** ordinal -> {episode, task, stages, points} of the watched session. */
    episodes: new Map(),
    fields: [],
    refused: false,
    charts: {},
    /** session id -> its table row. */
    rows: new Map(),
    retry: undefined,
  };

  const fmt = (x, digits = 3) => (x === null || x === undefined ? '–' : typeof x === 'number' ? x.toFixed(digits) : String(x));

  function setStatus(text, s) {
    const el = $('status');
    el.textContent = text;
    el.dataset.state = s;
  }

  function feedUrl() {
    const u = new URL('v1/live', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  function connect() {
    clearTimeout(state.retry);
    state.refused = false;
    setStatus('connecting…', 'connecting');
    const ws = new WebSocket(feedUrl());
    state.ws = ws;
    ws.onopen = () => subscribe();
    ws.onmessage = (ev) => receive(JSON.parse(ev.data));
    ws.onclose = () => {
      if (state.ws !== ws) return;
      if (state.refused) return;
      setStatus('disconnected; reconnecting…', 'closed');
      state.retry = setTimeout(connect, 2000);
    };
  }

  function subscribe() {
    const ws = state.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) return;
    const msg = { type: 'subscribe', session: state.watched, thumbnails: true };
    if (state.key !== '') msg.api_key = state.key;
    ws.send(JSON.stringify(msg));
  }

  function watch(id, chosen) {
    if (state.watched === id) return;
    state.watched = id;
    state.chosen = chosen;
    state.episodes.clear();
    $('thumbs').replaceChildren();
    subscribe();
  }

  function receive(m) {
    if (m.type === 'error') {
      if (m.code === 'SW_ERR_AUTH') {
        state.refused = true;
        setStatus('API key needed', 'refused');
        $('auth').hidden = false;
        $('dashboard').hidden = true;
        $('auth-error').textContent = state.key === '' ? '' : `${m.code}: ${m.message}`;
      } else if (m.code === 'SW_ERR_NO_SESSION') {
        state.watched = null;
        state.chosen = false;
      } else {
        setStatus(`${m.code}: ${m.message}`, 'refused');
      }
      return;
    }
    if (m.type === 'snapshot') {
      $('auth').hidden = true;
      $('dashboard').hidden = false;
      setStatus('live', 'live');
      state.fields = m.fields;
      $('model').textContent = `${m.model.name} ${m.model.version}`;
      $('model-info').textContent = JSON.stringify(m.model, null, 2);
      state.episodes.clear();
      if (m.watch !== null) for (const e of m.watch.episodes) addPoints(e);
      renderServer(m.server);
      renderSessions(m.sessions);
      renderWatch(m.sessions);
      return;
    }
    if (m.type === 'tick') {
      if (m.watch !== null && m.watch.session === state.watched) {
        for (const ordinal of [...state.episodes.keys()]) if (!m.watch.kept.includes(ordinal)) state.episodes.delete(ordinal);
        for (const e of m.watch.episodes) addPoints(e);
      }
      renderServer(m.server);
      renderSessions(m.sessions);
      renderWatch(m.sessions);
      return;
    }
    if (m.type === 'thumbnail' && m.session === state.watched) renderThumbnails(m);
  }

  function addPoints(e) {
    let kept = state.episodes.get(e.ordinal);
    if (kept === undefined) {
      kept = { episode: e.episode, task: e.task, stages: e.stages, points: [] };
      state.episodes.set(e.ordinal, kept);
    }
    for (const p of e.points) kept.points.push(p);
    if (kept.points.length > MAX_POINTS) kept.points = kept.points.filter((_, i) => i % 2 === 0 || i === kept.points.length - 1);
  }

  function renderServer(s) {
    $('server-steps').textContent = fmt(s.steps_per_s, 1);
    $('server-sessions').textContent = String(s.sessions);
    $('server-viewers').textContent = String(s.viewers);
    $('server-inflight').textContent = String(s.in_flight);
    $('server-queue').textContent =
      Object.entries(s.queue_depth)
        .map(([g, n]) => `${g} ${n}`)
        .join(', ') || '–';
    $('server-batches').textContent =
      Object.entries(s.batches)
        .map(([g, b]) => `${g} ${fmt(b.mean_rows, 1)}`)
        .join(', ') || '–';
    $('server-lag').textContent = `${fmt(s.event_loop_lag_ms.p99, 1)} / ${fmt(s.event_loop_lag_ms.max, 1)} ms`;
    $('server-memory').textContent = `${s.memory_mb.rss} / ${s.memory_mb.heap_used} MB`;
    $('server-replica').textContent = s.replica;
  }

  /**
   * One row per session, kept across ticks and updated in place (a row rebuilt under the pointer
   * would swallow a click); rows come and go only as sessions do.
   */
  function renderSessions(sessions) {
    const body = $('sessions').tBodies[0];
    const rows = sessions.map((s) => {
      let tr = state.rows.get(s.id);
      if (tr === undefined) {
        tr = document.createElement('tr');
        tr.dataset.session = s.id;
        for (let i = 0; i < 12; i++) tr.append(document.createElement('td'));
        state.rows.set(s.id, tr);
      }
      tr.dataset.state = s.state;
      tr.setAttribute('aria-selected', String(s.id === state.watched));
      const errors = Object.entries(s.errors)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');
      const texts = [
        s.state === 'closed' ? `${s.id} (closed)` : s.id,
        s.protocol,
        s.task ?? '–',
        s.episode ?? '–',
        s.step ?? '–',
        fmt(s.steps_per_s, 1),
        fmt(s.latency_ms.p50, 1),
        fmt(s.latency_ms.p99, 1),
        fmt(s.progress),
        s.stage === null ? '–' : s.stage.name,
        fmt(s.shaped, 4),
        errors || '–',
      ];
      texts.forEach((t, i) => {
        const td = tr.cells[i];
        if (td.textContent !== String(t)) td.textContent = String(t);
      });
      return tr;
    });
    const listed = new Set(sessions.map((s) => s.id));
    for (const id of [...state.rows.keys()]) if (!listed.has(id)) state.rows.delete(id);
    // Reorder only when the order changed, so rows under the pointer stay where they are.
    if (rows.length !== body.rows.length || rows.some((tr, i) => body.rows[i] !== tr)) body.replaceChildren(...rows);
    $('no-sessions').hidden = sessions.length > 0;
    const open = sessions.filter((s) => s.state === 'open');
    const watched = sessions.find((s) => s.id === state.watched);
    // Follow the robot: with no session chosen by hand, watch the newest open one.
    if (!state.chosen && open.length > 0 && (watched === undefined || watched.state === 'closed')) watch(open[open.length - 1].id, false);
  }

  function renderWatch(sessions) {
    const s = sessions.find((x) => x.id === state.watched);
    $('watch').hidden = s === undefined;
    if (s === undefined) return;
    $('watch-title').textContent = `${s.id} · ${s.protocol} · ${s.task ?? 'no task yet'}${s.state === 'closed' ? ' (closed)' : ''}`;
    $('watch-episode').textContent = String(s.episode ?? '–');
    $('watch-step').textContent = String(s.step ?? '–');
    $('watch-progress').textContent = fmt(s.progress);
    $('watch-stage').textContent = s.stage === null ? '–' : `${s.stage.index} ${s.stage.name}`;
    $('watch-shaped').textContent = fmt(s.shaped, 4);
    $('watch-heads').textContent = s.heads === null ? '–' : `${fmt(s.heads.sarm)} / ${fmt(s.heads.grm)}`;
    $('watch-uncertainty').textContent = s.uncertainty === null ? 'not reported' : fmt(s.uncertainty);
    renderCharts();
  }

  /** The kept episodes, oldest first: [previous, current] (or just current). */
  function keptEpisodes() {
    return [...state.episodes.entries()].sort((a, b) => a[0] - b[0]).map(([ordinal, e]) => ({ ordinal, ...e }));
  }

  /** uPlot wants one x array: the union of the lines' steps, with null where a line has none. */
  function aligned(lines) {
    const steps = new Set();
    for (const l of lines) for (const p of l.episode.points) steps.add(p[0]);
    const xs = [...steps].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const series = lines.map((l) => {
      const ys = new Array(xs.length).fill(null);
      for (const p of l.episode.points) ys[index.get(p[0])] = p[l.column];
      return ys;
    });
    return [xs, ...series];
  }

  /** Draw or update one chart; `yNames` labels integer y ticks by name (the stage chart). */
  function chart(id, seriesSpec, data, yRange, yNames) {
    const el = $(id);
    const key = `${id}:${seriesSpec.map((s) => s.label).join('|')}:${(yNames ?? []).join('|')}`;
    let c = state.charts[id];
    if (c !== undefined && c.key !== key) {
      c.plot.destroy();
      c = undefined;
    }
    if (c === undefined) {
      const width = Math.max(320, el.clientWidth || 480);
      const opts = {
        width,
        height: 220,
        scales: { x: { time: false }, ...(yRange ? { y: { range: yRange } } : {}) },
        axes: [
          { label: 'step' },
          yNames ? { incrs: [1], size: 80, values: (_u, splits) => splits.map((v) => (Number.isInteger(v) ? (yNames[v] ?? '') : '')) } : {},
        ],
        series: [{ label: 'step' }, ...seriesSpec.map((s) => ({ spanGaps: true, width: 1.5, ...s }))],
        legend: { live: true },
      };
      c = { key, plot: new uPlot(opts, data, el) };
      state.charts[id] = c;
    } else {
      c.plot.setData(data);
    }
  }

  const COLORS = { current: '#0969da', previous: '#8c959f', sarm: '#bf8700', grm: '#8250df' };

  function renderCharts() {
    const eps = keptEpisodes();
    if (eps.length === 0) return;
    const cur = eps[eps.length - 1];
    const prev = eps.length > 1 ? eps[eps.length - 2] : undefined;
    const both = prev ? [prev, cur] : [cur];
    const name = (e) => `episode ${e.episode}`;
    const col = (n) => state.fields.indexOf(n);
    /** One line per kept episode of `field`: the previous dashed, the current solid. */
    const episodeLines = (field) => [
      ...(prev ? [{ episode: prev, column: col(field), label: `${name(prev)} (previous)`, stroke: COLORS.previous, dash: [4, 4] }] : []),
      { episode: cur, column: col(field), label: `${name(cur)} (current)`, stroke: COLORS.current },
    ];
    const draw = (id, lines, yRange, yNames) =>
      chart(
        id,
        lines.map(({ label, stroke, dash, width }) => ({ label, stroke, ...(dash ? { dash } : {}), ...(width ? { width } : {}) })),
        aligned(lines),
        yRange,
        yNames,
      );
    // Progress, with the current episode's raw heads beside it where they differ from it (progress
    // from SARM alone, unsmoothed, is the SARM head: a second line would hide the first).
    const progress = episodeLines('progress');
    const differs = (head) => cur.points.some((p) => p[col(head)] !== null && Math.abs(p[col(head)] - p[col('progress')]) > 1e-9);
    if (differs('sarm')) progress.push({ episode: cur, column: col('sarm'), label: 'SARM head (current)', stroke: COLORS.sarm, width: 1 });
    if (differs('grm')) progress.push({ episode: cur, column: col('grm'), label: 'GRM head (current)', stroke: COLORS.grm, width: 1 });
    draw('chart-progress', progress, [0, 1]);
    draw('chart-stage', episodeLines('stage'), [0, Math.max(1, cur.stages.length - 1)], cur.stages);
    draw('chart-reward', episodeLines('shaped'));
    $('episodes').textContent = both
      .map((e) => `${name(e)}: ${e.task}, ${e.points.length ? e.points[e.points.length - 1][0] + 1 : 0} steps`)
      .join(' · ');
  }

  function renderThumbnails(m) {
    const box = $('thumbs');
    for (const [view, b64] of Object.entries(m.views)) {
      let img = box.querySelector(`img[data-view="${CSS.escape(view)}"]`);
      if (img === null) {
        const fig = document.createElement('figure');
        img = document.createElement('img');
        img.dataset.view = view;
        img.alt = view;
        const cap = document.createElement('figcaption');
        cap.textContent = view;
        fig.append(img, cap);
        box.append(fig);
      }
      img.src = `data:${m.mime};base64,${b64}`;
      img.dataset.step = String(m.step);
    }
  }

  $('sessions').tBodies[0].addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr[data-session]');
    if (tr !== null) watch(tr.dataset.session, true);
  });

  // Charts follow their box's width.
  new ResizeObserver(() => {
    for (const [id, c] of Object.entries(state.charts)) {
      const width = Math.max(320, $(id).clientWidth);
      if (width !== c.plot.width) c.plot.setSize({ width, height: c.plot.height });
    }
  }).observe($('watch'));

  $('auth').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.key = $('api-key').value.trim();
    sessionStorage.setItem(KEY_STORE, state.key);
    connect();
  });

  connect();
})();
