// The operator console on the dashboard (alertsim/web/console.py, docs/operator.md):
// sign in, then cancel or close each open event; the service's answer (or the refusal)
// is shown on the page. Every POST carries the session's CSRF token. Open events come
// from the dashboard's own stream (opened only while signed in), never from polling.
(() => {
  "use strict";
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "console/static/console.css";
  document.head.appendChild(css);

  const panel = document.createElement("section");
  panel.id = "console";
  (document.querySelector("aside") || document.body).appendChild(panel);

  const state = {user: null, csrf: null, mode: "off", texts: {}, events: new Set(),
                 closed: new Set(), message: null, stream: null, busy: false};

  const lang = () => (document.documentElement.lang === "en" ? "en" : "ja");
  const t = (key, fields = {}) => {
    const entry = state.texts[key];
    const raw = entry ? entry[lang()] : key;
    return raw.replace(/\{(\w+)\}/g, (_, name) => String(fields[name] ?? ""));
  };
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    children.forEach((c) => node.append(c));
    return node;
  };

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": state.csrf || ""},
      body: JSON.stringify(body || {}),
    });
    return {status: response.status, body: await response.json()};
  }

  function take(session) {
    state.user = session.user;
    state.csrf = session.csrf;
    state.mode = session.mode;
    if (session.texts) state.texts = session.texts;
    follow();
  }

  function follow() {
    // Open events from the dashboard's stream, while signed in only.
    if (state.user && !state.stream) {
      state.stream = new EventSource("api/stream");
      state.stream.onmessage = (m) => {
        const u = JSON.parse(m.data);
        if (u.type === "snapshot") {
          (u.events || []).forEach((e) => (e.closed ? state.closed : state.events).add(e.event_id));
        }
        // A closed event's track arrives as empty groups, with its id in `closed`.
        (u.closed || []).forEach((id) => state.closed.add(id));
        Object.keys(u.tracks || {}).forEach((id) => state.events.add(id));
        (u.log || []).forEach((row) => row.event_id && state.events.add(row.event_id));
        render();
      };
    } else if (!state.user && state.stream) {
      state.stream.close();
      state.stream = null;
    }
  }

  function show(kind, text, code) {
    state.message = {kind, text, code};
    render();
  }

  function refusal(body) {
    show("refused", t(`error.${body.error}`), body.error);
  }

  async function signIn(form) {
    const data = new FormData(form);
    const {status, body} = await post("console/sign-in",
      {user: data.get("user"), password: data.get("password")});
    if (status === 200) {
      state.message = null;
      take(body);
      render();
    } else {
      refusal(body);
    }
  }

  async function signOut() {
    const {status, body} = await post("console/sign-out");
    if (status === 200) take(body);
    state.message = null;
    render();
  }

  async function act(action, eventId) {
    if (!window.confirm(t(`confirm.${action}`, {event_id: eventId}))) return;
    state.busy = true;
    show("pending", t("sending", {event_id: eventId}), "pending");
    try {
      const {status, body} = await post(`console/${action}`, {event_id: eventId});
      if (status !== 200) return refusal(body);
      const places = body.places.length ? t("verdict.places", {places: body.places.join(", ")}) : "";
      if (body.applied && action === "close") state.closed.add(eventId);
      show(body.applied ? "applied" : "refused",
           t(`verdict.${body.verdict}`, {event_id: eventId, reason: body.reason, places}),
           body.verdict);
    } finally {
      state.busy = false;
      render();
    }
  }

  function eventRows() {
    const open = [...state.events].filter((id) => !state.closed.has(id)).sort();
    if (!open.length) return [el("p", {class: "console-empty"}, t("no_events"))];
    return open.map((id) => {
      const cancel = el("button", {type: "button", class: "console-cancel", "data-event": id}, t("cancel"));
      const close = el("button", {type: "button", class: "console-close", "data-event": id}, t("close"));
      cancel.disabled = close.disabled = state.busy;
      cancel.onclick = () => act("cancel", id);
      close.onclick = () => act("close", id);
      return el("div", {class: "console-event", "data-event": id}, el("code", {}, id), cancel, close);
    });
  }

  function signInForm() {
    const form = el("form", {id: "console-sign-in"},
      el("label", {}, t("field.user"), el("input", {name: "user", autocomplete: "username", required: ""})),
      el("label", {}, t("field.password"), el("input", {name: "password", type: "password",
        autocomplete: "current-password", required: ""})),
      el("button", {type: "submit"}, t("sign_in")));
    form.onsubmit = (e) => { e.preventDefault(); signIn(form); };
    return [el("p", {}, t("signed_out")), el("p", {class: "hint"}, t(`hint.${state.mode}`)), form];
  }

  function render() {
    const body = [el("h2", {}, t("title"))];
    if (state.mode === "off") {
      body.push(el("p", {class: "hint"}, t("off")));
    } else if (!state.user) {
      body.push(...signInForm());
    } else {
      const out = el("button", {type: "button", id: "console-sign-out"}, t("sign_out"));
      out.onclick = signOut;
      body.push(el("p", {id: "console-user"}, t("signed_in", {user: state.user}), " ", out));
      body.push(...eventRows());
    }
    if (state.message) {
      body.push(el("p", {id: "console-message", class: state.message.kind, role: "status",
                         "data-code": state.message.code},
                   state.message.text));
    }
    panel.replaceChildren(...body);
  }

  new MutationObserver(render).observe(document.documentElement,
                                       {attributes: true, attributeFilter: ["lang"]});
  fetch("console/session", {credentials: "same-origin"})
    .then((r) => r.json()).then((s) => { take(s); render(); });
})();
