// alertsim live dashboard: follows /api/stream (server-sent events) and keeps the map,
// the message log, the places table and the scenario clock current. No dependencies.
// The stream sends a snapshot, then frames of changes (alertsim/web/frames.py): states,
// places (events, last state), reasons per event, closed events, log rows, errors,
// receipt tallies, one event's overlay group per map frame. A dropped stream reconnects by
// itself and starts again from a snapshot.
// Language: every string comes from alertsim/i18n/dashboard.json (the page embeds it);
// the toggle switches <html lang> and redraws in place, and is remembered.
"use strict";
(() => {
  const map = document.getElementById("japan-map");
  const names = JSON.parse(document.getElementById("prefecture-names").textContent);
  const texts = JSON.parse(document.getElementById("dashboard-texts").textContent);
  const logBody = document.querySelector("#message-log tbody");
  const receiptsBody = document.querySelector("#receipts tbody");
  const states = {};
  let places = {};   // code -> {events: [...], last: state | null}
  let reasons = {};  // event -> code -> reason
  const closed = new Set();
  const logRows = [];
  const errorRows = [];
  let receipts = {};
  let clock = null; // {sim: ms, at: performance.now(), speed}

  const lang = () => (document.documentElement.lang === "en" ? "en" : "ja");
  const t = (key, fields = {}) => {
    const entry = texts[key];
    const raw = entry ? entry[lang()] : key;
    return raw.replace(/\{(\w+)\}/g, (_, name) => String(fields[name] ?? ""));
  };
  const el = (tag, attrs = {}, text = "") => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };
  const placeName = (code) => {
    if (code === "national") return t("places.national");
    return names[code] ? `${code} ${names[code][lang()]}` : code;
  };
  const stateText = (state) => t(`state.${state}`);
  const eventText = (id) => (closed.has(id) ? t("event.closed", {event: id}) : id);

  function reasonLines(code) {
    const place = places[code];
    if (!place) return [];
    return place.events.filter((id) => reasons[id] && reasons[id][code])
      .map((id) => t("reason.line", {event: id, reason: t(`reason.${reasons[id][code]}`)}));
  }

  function placeTitle(code) {
    // The prefecture's tooltip: its name, what it shows and why, per event.
    const g = map.querySelector(`g.prefecture[data-code="${code}"] > title`);
    if (!g) return;
    const state = states[code] || "none";
    const last = places[code] && places[code].last;
    const shown = state === "none" && last ? t("state.last", {state: stateText(last)})
      : stateText(state);
    g.textContent = [`${placeName(code)}: ${shown}`, ...reasonLines(code)].join("\n");
  }

  function setState(code, state) {
    states[code] = state;
    const g = map.querySelector(`g.prefecture[data-code="${code}"]`);
    if (g && g.getAttribute("data-state") !== state) g.setAttribute("data-state", state);
    placeTitle(code);
  }

  function setPlace(code, place) {
    if (place.events.length || place.last) places[code] = place; else delete places[code];
    const g = map.querySelector(`g.prefecture[data-code="${code}"]`);
    if (g && place.last) g.setAttribute("data-last", place.last);
    else if (g) g.removeAttribute("data-last");
    placeTitle(code);
  }

  function logRow(row) {
    const tr = el("tr", {"data-identifier": row.identifier, "data-stage": row.stage,
                         "data-prefecture": row.prefecture, "data-event": row.event_id});
    const other = lang() === "ja" ? row.headline_en : row.headline_ja;
    tr.append(el("td", {}, row.time.slice(11)),
              el("td", {class: "event"}, eventText(row.event_id)),
              el("td", {}, placeName(row.prefecture)),
              el("td", {class: "stage"},
                 `${t(`stage.${row.stage}`)} (${t(`msgtype.${row.msg_type}`)})`),
              el("td", {class: "headline", lang: lang(), title: other},
                 lang() === "ja" ? row.headline_ja : row.headline_en),
              el("td", {class: "identifier"}, row.identifier));
    return tr;
  }

  function addLog(row) {
    if (logRows.some((r) => r.identifier === row.identifier)) return;
    logRows.push(row);
    logBody.append(logRow(row));
    const box = logBody.closest("#log-box");
    box.scrollTop = box.scrollHeight;
  }

  function renderLog() {
    logBody.replaceChildren(...logRows.map(logRow));
  }

  function placeRow(code) {
    const r = receipts[code] || {count: 0};
    const state = states[code] || (code === "national" ? "-" : "none");
    const last = state === "none" && places[code] && places[code].last;
    const lat = r.latency_ms_median == null ? "-" :
      t("places.ms", {median: r.latency_ms_median, max: r.latency_ms_max});
    const tr = el("tr", {"data-code": code});
    const stateCell = last
      ? el("td", {class: `state-${last} last`, "data-state": state, "data-last": last},
           t("state.last", {state: stateText(last)}))
      : el("td", {class: `state-${state}`, "data-state": state},
           state === "-" ? "-" : stateText(state));
    const events = (places[code] && places[code].events) || [];
    tr.append(el("td", {}, placeName(code)), stateCell,
              el("td", {class: "events"}, events.map(eventText).join(", ")),
              el("td", {class: "reason"}, reasonLines(code).join("\n")),
              el("td", {class: "count"}, String(r.count)), el("td", {}, lat));
    return tr;
  }

  function renderReceipts() {
    const shown = new Set(Object.keys(receipts));
    for (const [code, s] of Object.entries(states)) if (s !== "none") shown.add(code);
    for (const code of Object.keys(places)) shown.add(code);
    receiptsBody.replaceChildren(...[...shown].sort().map(placeRow));
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

  function errorLine(row) {
    return el("div", {}, t("error.row", row));
  }

  function addError(row) {
    errorRows.push(row);
    document.getElementById("errors").append(errorLine(row));
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

  function renderPlaces() {
    for (const code of Object.keys(names)) placeTitle(code);
    renderReceipts();
  }

  function snapshot(s) {
    closed.clear();
    (s.events || []).forEach((e) => e.closed && closed.add(e.event_id));
    reasons = s.reasons || {};
    places = {};
    for (const code of Object.keys(names)) {
      setPlace(code, (s.places || {})[code] || {events: [], last: null});
    }
    for (const [code, state] of Object.entries(s.prefectures)) setState(code, state);
    s.log.forEach(addLog);
    receipts = s.receipts;
    setClock(s.clock);
    setTracks(s.tracks);
    renderLog();
    renderPlaces();
  }

  function frame(f) {
    (f.closed || []).forEach((id) => closed.add(id));
    Object.assign(reasons, f.reasons || {});
    for (const [code, place] of Object.entries(f.places || {})) setPlace(code, place);
    for (const [code, state] of Object.entries(f.states || {})) setState(code, state);
    (f.log || []).forEach(addLog);
    (f.errors || []).forEach(addError);
    Object.assign(receipts, f.receipts || {});
    if (f.tracks) setTracks(f.tracks);
    if (f.clock) setClock(f.clock);
    if (f.closed) renderLog();
    if (f.states || f.receipts || f.places || f.reasons || f.closed) renderPlaces();
  }

  function translate() {
    // Static texts (their data-* attributes are the fields), attributes, map labels.
    document.querySelectorAll("[data-i18n]").forEach((e) => {
      if (texts[e.dataset.i18n]) e.textContent = t(e.dataset.i18n, e.dataset);
    });
    document.querySelectorAll("[data-i18n-title]").forEach((e) => {
      e.setAttribute("title", t(e.dataset.i18nTitle));
    });
    document.querySelectorAll("[data-i18n-aria-label]").forEach((e) => {
      e.setAttribute("aria-label", t(e.dataset.i18nAriaLabel));
    });
    map.querySelectorAll("text.pref-label").forEach((e) => {
      e.textContent = e.dataset[lang()];
    });
    renderLog();
    renderPlaces();
    document.getElementById("errors").replaceChildren(...errorRows.map(errorLine));
  }

  function setLang(next) {
    document.documentElement.lang = next;
    try { localStorage.setItem("alertsim.lang", next); } catch (_) { /* private mode */ }
    const url = new URL(window.location.href);
    url.searchParams.set("lang", next);
    history.replaceState(null, "", url);
    translate();
  }

  document.getElementById("lang-toggle").addEventListener(
    "click", () => setLang(lang() === "ja" ? "en" : "ja"));
  const asked = new URL(window.location.href).searchParams.get("lang");
  let stored = null;
  try { stored = localStorage.getItem("alertsim.lang"); } catch (_) { /* private mode */ }
  if (!asked && (stored === "en" || stored === "ja") && stored !== lang()) setLang(stored);

  const handlers = {snapshot, frame};

  const stream = new EventSource("api/stream");
  stream.onmessage = (m) => {
    const update = JSON.parse(m.data);
    (handlers[update.type] || (() => {}))(update);
  };
  setInterval(tick, 200);
})();
