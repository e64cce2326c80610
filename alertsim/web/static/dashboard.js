// alertsim live dashboard: follows /api/stream (server-sent events) and keeps the map,
// the message log, the receipts table and the scenario clock current. No dependencies.
// The stream sends a snapshot, then frames of changes (alertsim/web/frames.py): states,
// log rows, errors, receipt tallies of the places touched, one event's overlay group per
// map frame. A dropped stream reconnects by itself and starts again from a snapshot.
"use strict";
(() => {
  const map = document.getElementById("japan-map");
  const names = JSON.parse(document.getElementById("prefecture-names").textContent);
  const logBody = document.querySelector("#message-log tbody");
  const receiptsBody = document.querySelector("#receipts tbody");
  const states = {};
  let receipts = {};
  let clock = null; // {sim: ms, at: performance.now(), speed}

  const el = (tag, attrs = {}, text = "") => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };
  const placeName = (code) => (names[code] ? `${code} ${names[code]}` : code);

  function setState(code, state) {
    states[code] = state;
    const g = map.querySelector(`g.prefecture[data-code="${code}"]`);
    if (g && g.getAttribute("data-state") !== state) g.setAttribute("data-state", state);
  }

  function addLog(row) {
    if (logBody.querySelector(`tr[data-identifier="${CSS.escape(row.identifier)}"]`)) return;
    const tr = el("tr", {"data-identifier": row.identifier, "data-stage": row.stage,
                         "data-prefecture": row.prefecture});
    tr.append(el("td", {}, row.time.slice(11)), el("td", {}, placeName(row.prefecture)),
              el("td", {class: "stage"}, `${row.stage} (${row.msg_type})`));
    const headline = el("td");
    headline.append(el("span", {class: "ja", lang: "ja"}, row.headline_ja),
                    el("span", {class: "en"}, row.headline_en));
    tr.append(headline, el("td", {class: "identifier"}, row.identifier));
    logBody.append(tr);
    const box = logBody.closest("#log-box");
    box.scrollTop = box.scrollHeight;
  }

  function renderReceipts() {
    const places = new Set(Object.keys(receipts));
    for (const [code, s] of Object.entries(states)) if (s !== "none") places.add(code);
    receiptsBody.replaceChildren();
    for (const code of [...places].sort()) {
      const r = receipts[code] || {count: 0};
      const state = states[code] || (code === "national" ? "-" : "none");
      const lat = r.latency_ms_median == null ? "-" :
        `${r.latency_ms_median} / ${r.latency_ms_max} ms`;
      const tr = el("tr", {"data-code": code});
      tr.append(el("td", {}, placeName(code)),
                el("td", {class: `state-${state}`, "data-state": state}, state),
                el("td", {class: "count"}, String(r.count)), el("td", {}, lat));
      receiptsBody.append(tr);
    }
  }

  function setTrack(eventId, frames) {
    // frames: map frame name -> that event's <g class="event-overlay"> in the frame
    for (const [frame, svgText] of Object.entries(frames)) {
      const holder = map.querySelector(`g.overlay[data-frame="${CSS.escape(frame)}"]`);
      if (!holder) continue;
      const doc = new DOMParser().parseFromString(
        `<svg xmlns="http://www.w3.org/2000/svg">${svgText}</svg>`, "image/svg+xml");
      const group = document.importNode(doc.documentElement.firstElementChild, true);
      const old = holder.querySelector(
        `g.event-overlay[data-event="${CSS.escape(eventId)}"]`);
      if (old) old.replaceWith(group); else holder.append(group);
    }
  }

  function setTracks(tracks) {
    for (const [eventId, frames] of Object.entries(tracks)) setTrack(eventId, frames);
    tick(); // place the missiles on the new tracks now, not at the next tick
  }

  function addError(row) {
    document.getElementById("errors").append(
      el("div", {}, `${row.time} rejected from ${row.source}: ${row.reason}`));
  }

  function setClock(c) {
    if (c.sim_now) clock = {sim: Date.parse(c.sim_now), at: performance.now(), speed: c.speed};
    document.getElementById("speed").textContent = `×${c.speed}`;
  }

  function simNow() {
    return clock && clock.sim + (performance.now() - clock.at) * clock.speed;
  }

  function jst(ms) {
    return new Date(ms + 9 * 3600e3).toISOString().slice(0, 19).replace("T", " ");
  }

  function moveMissiles(now) {
    for (const track of map.querySelectorAll("polyline.track")) {
      const dot = track.parentNode.querySelector(
        `circle.missile[data-event="${CSS.escape(track.dataset.event)}"]`);
      const t0 = Date.parse(track.dataset.launch), t1 = Date.parse(track.dataset.impact);
      const f = (now - t0) / (t1 - t0), n = track.points.length;
      if (!dot || !(f >= 0 && f <= 1) || n < 2) { if (dot) dot.setAttribute("visibility", "hidden"); continue; }
      const at = f * (n - 1), i = Math.min(Math.floor(at), n - 2), k = at - i;
      const a = track.points.getItem(i), b = track.points.getItem(i + 1);
      dot.setAttribute("cx", (a.x + (b.x - a.x) * k).toFixed(1));
      dot.setAttribute("cy", (a.y + (b.y - a.y) * k).toFixed(1));
      dot.setAttribute("visibility", "visible");
    }
  }

  function tick() {
    const now = simNow();
    if (now) {
      document.getElementById("sim-clock").textContent = jst(now);
      moveMissiles(now);
    }
  }

  function snapshot(s) {
    for (const [code, state] of Object.entries(s.prefectures)) setState(code, state);
    s.log.forEach(addLog);
    receipts = s.receipts;
    setClock(s.clock);
    setTracks(s.tracks);
    renderReceipts();
  }

  function frame(f) {
    for (const [code, state] of Object.entries(f.states || {})) setState(code, state);
    (f.log || []).forEach(addLog);
    (f.errors || []).forEach(addError);
    Object.assign(receipts, f.receipts || {});
    if (f.tracks) setTracks(f.tracks);
    if (f.clock) setClock(f.clock);
    if (f.states || f.receipts) renderReceipts();
  }

  const handlers = {snapshot, frame};

  const stream = new EventSource("api/stream");
  stream.onmessage = (m) => {
    const update = JSON.parse(m.data);
    (handlers[update.type] || (() => {}))(update);
  };
  setInterval(tick, 200);
})();
