// alertsim scenario builder: the form as a draft, its preview from the server as the user
// edits (POST api/preview), map clicks as places (POST api/locate), save and start a drill.
// Every string comes from the `builder` catalogue embedded in the page (#i18n).
"use strict";
(() => {
  const strings = JSON.parse(document.getElementById("i18n").textContent);
  let lang = document.documentElement.lang === "en" ? "en" : "ja";
  const $ = (id) => document.getElementById(id);
  const svg = document.getElementById("builder-map");
  const t = (key, fields = {}) => {
    const entry = strings[key];
    if (!entry) return key;
    return entry[lang].replace(/\{(\w+)\}/g, (_, name) => String(fields[name] ?? ""));
  };
  let last = null;       // the last preview shown
  let savedAs = null;    // {name, path} of the file saved from the current draft
  let asked = 0;         // preview requests sent: a late answer never hides a newer one
  let timer = null;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  }
  const label = (key, fields) => el("span", {"data-i18n": key}, t(key, fields));

  async function post(path, body) {
    const response = await fetch(path, {method: "POST", body: JSON.stringify(body),
                                         headers: {"Content-Type": "application/json"}});
    return {ok: response.ok, body: await response.json()};
  }

  function seconds(text) {
    const parts = String(text).trim().split(":").map(Number);
    return parts.reduce((total, part) => total * 60 + part, 0) || 0;
  }
  function offset(total) {
    const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
    return [h, m, s].map((n) => String(n).padStart(2, "0")).join(":");
  }
  const num = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  const aimBy = () => document.querySelector('input[name="aim_by"]:checked').value;

  function launchTime() {
    const value = $("launch_time").value;
    return value ? `${value.length === 16 ? value + ":00" : value}+09:00` : "";
  }

  function updateOf(row) {
    const lat = row.querySelector(".lat").value.trim();
    const lon = row.querySelector(".lon").value.trim();
    const update = {at: row.querySelector(".at").value};
    if (lat !== "" || lon !== "") {
      update.aim = {target: {lat: lat === "" ? null : Number(lat),
                             lon: lon === "" ? null : Number(lon)}};
    }
    if (row.querySelector(".outcome").value) update.outcome = row.querySelector(".outcome").value;
    return update;
  }

  function draft() {
    const aim = aimBy() === "target"
      ? {target: {lat: num("target_lat"), lon: num("target_lon")}}
      : {azimuth_deg: num("azimuth"), range_km: num("range")};
    return {
      title: $("title").value, event_id: $("event_id").value, status: $("status").value,
      policy: $("policy").value, object: $("object").value, notes: $("notes").value,
      site: $("site").value || null,
      launch: {lat: num("launch_lat"), lon: num("launch_lon"), time: launchTime()},
      aim, flight_min: num("flight_min"), detect_at: $("detect_at").value,
      uncertainty: {cross_track_km: num("cross"), along_track_km: num("along")},
      updates: [...$("updates").children].map(updateOf),
      actions: [...$("actions").children].map((row) => (
        {at: row.querySelector(".at").value, action: row.dataset.action})),
    };
  }

  // --- preview --------------------------------------------------------------------------
  function setState(state) { $("preview").dataset.state = state; }

  function schedule() {
    setState("pending");
    if (savedAs) { savedAs = null; showSaved(); }
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; refresh(); }, 250);
  }

  async function refresh() {
    const mine = ++asked;
    $("busy").hidden = false;
    let answer;
    try {
      answer = await post("api/preview", draft());
    } catch (error) {
      answer = {ok: false, body: {errors: [t("error.network")]}};
    }
    if (mine !== asked) return;
    $("busy").hidden = true;
    if (answer.ok) { last = answer.body; render(last); } else { showErrors(answer.body.errors); }
    if (timer === null) setState(answer.ok ? "ready" : "error");
  }

  function showErrors(errors) {
    last = null;
    const box = $("errors");
    box.replaceChildren(label("preview.errors"), el("ul", {}, ...errors.map((e) => el("li", {}, e))));
    box.hidden = false;
    for (const id of ["summary", "refusals", "open-at-end", "yaml"]) $(id).textContent = "";
    $("detections").replaceChildren();
    $("prefectures").tBodies[0].replaceChildren();
    drawOverlay("");
    colour({});
  }

  const name = (p) => `${p.code} ${lang === "ja" ? p.name_ja : p.name_en}`;

  function detectionItem(d) {
    const sea = (lang === "ja" ? d.sea_ja : d.sea_en);
    const head = t("preview.detection", {
      sequence: d.sequence, at: d.at, course: t("course." + d.course),
      impact: t("impact." + d.impact), sea: sea ? ` (${sea})` : ""});
    const places = d.prefectures.map((p) => el("li", {"data-code": p.code},
      `${name(p)}: ${t("reason." + p.reason)} ${p.start}–${p.end}`));
    const count = d.prefectures.length
      ? t("preview.warned", {count: d.prefectures.length}) : t("preview.none");
    return el("li", {"data-sequence": d.sequence}, el("div", {}, head),
              el("div", {class: "count"}, count), el("ul", {}, ...places));
  }

  function prefectureRow(p) {
    const messages = p.messages.map((m) => {
      // The stage's name, unless the headline already says it (English often does).
      const headline = lang === "ja" ? m.headline_ja : m.headline_en;
      const stage = t("stage." + m.stage);
      const said = headline.toLowerCase().includes(stage.toLowerCase());
      return el("li", {"data-stage": m.stage}, `${m.at} ${headline}${said ? "" : ` (${stage})`}`);
    });
    return el("tr", {"data-code": p.code}, el("td", {}, name(p)),
              el("td", {}, t("reason." + p.reason)), el("td", {}, `${p.start}–${p.end}`),
              el("td", {}, el("ol", {}, ...messages)));
  }

  function render(p) {
    $("errors").hidden = true;
    $("summary").textContent = t("preview.summary", {
      range: p.aim.range_km.toLocaleString("en"), azimuth: p.aim.azimuth_deg,
      minutes: p.flight_min, policy: t("policy." + p.policy)});
    if (aimBy() === "target") {
      $("azimuth").value = p.aim.azimuth_deg; $("range").value = p.aim.range_km;
    } else {
      $("target_lat").value = p.aim.lat; $("target_lon").value = p.aim.lon;
    }
    $("flight_min").placeholder = t("flight.auto", {minutes: p.flight_min});
    $("detections").replaceChildren(...p.detections.map(detectionItem));
    $("prefectures").tBodies[0].replaceChildren(...p.prefectures.map(prefectureRow));
    $("refusals").textContent = p.refusals.length
      ? t("preview.refusals", {count: p.refusals.length}) + " " +
        p.refusals.map((r) => `${r.at} ${r.reason}`).join("; ") : "";
    $("open-at-end").textContent = p.sheltering_at_end.length
      ? t("preview.open_at_end", {places: p.sheltering_at_end.join(", ")}) : "";
    $("yaml").textContent = p.yaml;
    drawOverlay(p.overlay);
    colour(p.states);
  }

  function drawOverlay(markup) {
    svg.querySelectorAll("g.overlay").forEach((g) => g.remove());
    const parsed = new DOMParser().parseFromString(
      `<svg xmlns="http://www.w3.org/2000/svg">${markup}</svg>`, "image/svg+xml");
    const labels = svg.querySelector("g.labels");
    for (const group of [...parsed.documentElement.children]) {
      svg.insertBefore(document.importNode(group, true), labels);
    }
  }

  function colour(states) {
    svg.querySelectorAll("g.prefecture").forEach((g) => {
      g.dataset.state = states[g.dataset.code] || "none";
    });
  }

  // --- timeline rows --------------------------------------------------------------------
  function latestAt() {
    const offsets = [seconds($("detect_at").value)];
    document.querySelectorAll("#updates .at, #actions .at").forEach(
      (input) => offsets.push(seconds(input.value)));
    return Math.max(...offsets);
  }

  function removable(row) {
    const button = el("button", {type: "button", class: "remove"}, label("button.remove"));
    button.addEventListener("click", () => { row.remove(); refreshModes(); schedule(); });
    return button;
  }

  function addUpdate() {
    const afterFall = last ? Math.ceil(last.flight_min + 1) * 60 : 0;
    const at = offset(Math.max(latestAt() + 60, afterFall));
    const outcomes = ["none", "impact", "orbit", "breakup", "lost"].map((o) => el(
      "option", {value: o === "none" ? "" : o, "data-i18n": "outcome." + o}, t("outcome." + o)));
    const row = el("div", {class: "update row"});
    const aimHere = el("button", {type: "button", class: "aim-here"}, label("button.aim_here"));
    aimHere.addEventListener("click", () => {
      $("click-mode").value = "update-" + [...$("updates").children].indexOf(row);
    });
    row.append(el("strong", {}, label("timeline.update")),
      el("label", {}, label("timeline.at"), el("input", {class: "at", value: at})),
      el("label", {}, label("timeline.outcome"), el("select", {class: "outcome"}, ...outcomes)),
      el("label", {}, label("timeline.aim"), el("input", {class: "lat", type: "number", step: "any"}),
         el("input", {class: "lon", type: "number", step: "any"})), aimHere, removable(row));
    $("updates").append(row);
    refreshModes();
    schedule();
  }

  function addAction(action) {
    const row = el("div", {class: "action row", "data-action": action},
      el("strong", {}, label("action." + action)));
    row.append(el("label", {}, label("timeline.at"),
                  el("input", {class: "at", value: offset(latestAt() + 60)})), removable(row));
    $("actions").append(row);
    schedule();
  }

  function refreshModes() {
    const select = $("click-mode");
    const chosen = select.value;
    select.querySelectorAll('option[value^="update-"]').forEach((o) => o.remove());
    [...$("updates").children].forEach((_, i) => select.append(el("option",
      {value: "update-" + i}, t("map.mode.update", {number: i + 1}))));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "target";
  }

  // --- map clicks, site, language, save, drill ------------------------------------------
  async function onMapClick(event) {
    setState("pending");
    const point = svg.createSVGPoint();
    point.x = event.clientX; point.y = event.clientY;
    const at = point.matrixTransform(svg.getScreenCTM().inverse());
    const answer = await post("api/locate", {x: at.x, y: at.y});
    if (!answer.ok) { showErrors(answer.body.errors); setState("error"); return; }
    const {lat, lon} = answer.body;
    const mode = $("click-mode").value;
    if (mode === "launch") {
      $("site").value = ""; $("launch_lat").value = lat; $("launch_lon").value = lon;
    } else if (mode === "target") {
      document.querySelector('input[name="aim_by"][value="target"]').checked = true;
      $("target_lat").value = lat; $("target_lon").value = lon;
    } else {
      const row = $("updates").children[Number(mode.split("-")[1])];
      row.querySelector(".lat").value = lat; row.querySelector(".lon").value = lon;
    }
    schedule();
  }

  function onSite() {
    const option = $("site").selectedOptions[0];
    if (option && option.value) {
      $("launch_lat").value = option.dataset.lat; $("launch_lon").value = option.dataset.lon;
    }
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    document.querySelectorAll("[data-name-ja]").forEach((node) => {
      node.textContent = lang === "ja" ? node.dataset.nameJa : node.dataset.nameEn;
    });
    refreshModes();
    showSaved();
    if (last) render(last);
  }

  function showSaved() {
    $("saved").textContent = savedAs ? t("save.done", {path: savedAs.path}) : "";
    $("saved").dataset.path = savedAs ? savedAs.path : "";
  }

  async function save() {
    const name = $("file").value.trim() || `${$("event_id").value}.yaml`;
    const answer = await post("api/save", {draft: draft(), name});
    if (!answer.ok) { showErrors(answer.body.errors); return; }
    savedAs = answer.body;
    showSaved();
  }

  async function startDrill() {
    const status = $("drill-status");
    if (!savedAs) { status.replaceChildren(label("drill.need_save")); return; }
    status.replaceChildren(label("drill.starting"));
    const answer = await post("api/drill", {name: savedAs.name});
    if (!answer.ok) { status.textContent = answer.body.errors.join("; "); return; }
    status.replaceChildren();
    const link = $("dashboard-link");
    link.href = answer.body.url;
    link.replaceChildren(label("drill.open"), ` ${answer.body.url}`);
    link.hidden = false;
  }

  $("draft").addEventListener("input", (event) => {
    const id = event.target.id;
    if (id === "azimuth" || id === "range") {
      document.querySelector('input[name="aim_by"][value="bearing"]').checked = true;
    } else if (id === "target_lat" || id === "target_lon") {
      document.querySelector('input[name="aim_by"][value="target"]').checked = true;
    } else if (id === "launch_lat" || id === "launch_lon") {
      $("site").value = "";
    }
    schedule();
  });
  $("draft").addEventListener("change", (event) => {
    if (event.target.id === "site") onSite();
    schedule();
  });
  $("add-update").addEventListener("click", addUpdate);
  $("add-cancel").addEventListener("click", () => addAction("cancel"));
  $("add-close").addEventListener("click", () => addAction("close"));
  $("lang-toggle").addEventListener("click", () => {
    lang = lang === "ja" ? "en" : "ja";
    applyLang();
  });
  $("save").addEventListener("click", save);
  $("start-drill").addEventListener("click", startDrill);
  svg.addEventListener("click", onMapClick);
  schedule();
})();
