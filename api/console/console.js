// Panoptes operators' console: one page over the engine's own API (docs/api.md), no framework, no
// build step. The key lives in sessionStorage (this tab only) and goes in the X-API-Key header;
// pictures and the live event stream are fetched with it too, so nothing secret sits in a URL.
// An engine without keys (GET /api/v1/access says "open") is entered at once, under a banner.
"use strict";

const API = "/api/v1";
const state = { key: sessionStorage.getItem("panoptes-key") || "", signedIn: false, open: false, admin: false, persons: new Map(), cameras: new Map(), timers: [], urls: [], keys: [] };
const $ = (sel, root = document) => root.querySelector(sel);

// ---- HTTP --------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

const keyHeader = () => (state.key ? { "X-API-Key": state.key } : {});

async function call(method, path, body) {
  const headers = keyHeader();
  let payload = body;
  if (body && !(body instanceof FormData)) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const res = await fetch(API + path, { method, headers, body: payload });
  // Signed in, and the key no longer works (revoked, or the open API was closed elsewhere).
  if (res.status === 401 && state.signedIn) signOut("The API needs a key now: sign in with one.");
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data && data.error ? data.error : { code: "http_" + res.status, message: res.statusText };
    throw new ApiError(res.status, e.code, e.message);
  }
  return data;
}

// A picture behind the key, as an object URL (revoked when the view changes); null when absent.
async function picture(path) {
  const res = await fetch(API + path, { headers: keyHeader() });
  if (!res.ok) return null;
  const url = URL.createObjectURL(await res.blob());
  state.urls.push(url);
  return url;
}

// ---- small DOM helpers -------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c.nodeType ? c : String(c));
  return el;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const pct = (s) => (typeof s === "number" ? s.toFixed(2) : "—");
const cameraName = (id) => (id == null ? "a deleted camera" : (state.cameras.get(id) || "camera " + id));
const personName = (id) => (id == null ? "unknown face" : (state.persons.get(id) || "person " + id));
// A camera with a substream (detect_url): which of its two streams it runs on, when not both as meant.
const STREAM_MODES = { paired: "paired", detect_only: "main stream down — substream only", main_only: "substream down — main stream only", mismatch: "streams mismatch" };
const streamMode = (s) => (s && s.stream_mode && s.stream_mode !== "single"
  ? [" · ", h("span", { class: "stream-mode stream-" + s.stream_mode }, STREAM_MODES[s.stream_mode] || s.stream_mode)] : null);

// Refusal reasons in words, for the codes the API gives photos and forms (docs/api.md).
const REASONS = {
  no_face: "No face was found in the photo.",
  several_faces: "The photo shows several faces: use one with only this person.",
  face_too_small: "The face is too small: use a closer or larger photo.",
  face_unclear: "The face is not clear enough (blurred, turned or dark).",
  unsupported_image_format: "This file is not a JPEG, PNG or WebP photo.",
  corrupt_image: "The file is damaged or not a picture.",
  truncated_image: "The picture is cut short (incomplete file).",
  empty_image: "The file is empty.",
  image_too_large: "The picture is too large.",
  payload_too_large: "The upload is too large.",
  no_photo: "Choose at least one photo.",
  name_taken: "That name is already used.",
  no_stored_face: "This appearance keeps no face to search with (it expired or was never embedded).",
  forbidden: "This key may only read.",
  database_unavailable: "The database is unavailable; try again shortly.",
  already_reviewed: "Someone has reviewed this appearance already: undo that first.",
  changed_meanwhile: "The engine judged this appearance again meanwhile: look again.",
  not_reviewed: "There is no review to undo.",
  not_matched: "This appearance is not matched to anyone: there is nothing to reject.",
  already_named: "This unknown face has been named already.",
  no_enrollable_face: "None of its faces is good enough to enrol (too small, unclear, or no longer kept).",
  rule_name_taken: "A rule with that name exists already.",
};
const explain = (e) => (REASONS[e.code] ? REASONS[e.code] + " (" + e.message + ")" : e.message);

// Which form field an API error code belongs to.
const FIELD_OF = {
  invalid_name: "name", name_taken: "name", invalid_camera_url: "url", unsupported_camera_url: "url",
  path_outside_media_root: "url", file_not_found: "url", file_cameras_disabled: "url", invalid_analysis_fps: "analysis_fps",
  invalid_stall_timeout: "stall_timeout_secs", invalid_motion_mask: "url", rule_name_taken: "name",
  invalid_detect_url: "detect_url", streams_mismatch: "detect_url",
};

function clearFormError(form) {
  form.querySelectorAll(".field-error, .form-error").forEach((el) => (el.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function showFormError(form, e) {
  clearFormError(form);
  // A refused rule names its field first ("windows[0]: start must be…").
  const field = FIELD_OF[e.code] || (e.code === "invalid_rule" ? (/^[a-z_]+/.exec(e.message) || [])[0] : null);
  const slot = field && form.querySelector(`[data-error-for="${field}"]`);
  const target = slot || form.querySelector(".form-error");
  target.textContent = explain(e);
  const input = field && form.querySelector(`[name="${field}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
}

function field(label, name, attrs = {}) {
  const id = "f-" + name + "-" + Math.random().toString(36).slice(2, 7);
  return [
    h("label", { for: id }, label),
    h("input", { id, name, type: "text", ...attrs, "aria-describedby": id + "-e" }),
    h("span", { class: "field-error", id: id + "-e", "data-error-for": name, role: "alert" }),
  ];
}

const write = (el) => (state.admin ? el : null); // write controls exist for admin keys only
const fill = (el, ...kids) => el.replaceChildren(...kids.filter((k) => k != null));
const kbd = (k) => h("kbd", {}, k);
const csv = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
const plural = (n, one) => `${n} ${one}${n === 1 ? "" : "s"}`;
// An API address as picture() takes it (without the /api/v1 prefix).
const apiPath = (url) => (url ? url.replace(/^\/api\/v1/, "") : null);

// ---- views -------------------------------------------------------------------------------------

function clearView() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.keys.forEach((fn) => document.removeEventListener("keydown", fn));
  state.keys = [];
  state.urls.forEach((u) => URL.revokeObjectURL(u));
  state.urls = [];
  const view = $("#view");
  view.replaceChildren();
  return view;
}

function every(ms, fn) { fn(); state.timers.push(setInterval(fn, ms)); }

// A page's keyboard shortcuts: removed with the page (clearView); keys typed into a field are not
// shortcuts, nor are those with Ctrl, Alt or Meta.
function onKey(fn) {
  const listener = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || (e.target.closest && e.target.closest("input, select, textarea, [contenteditable]"))) return;
    fn(e);
  };
  document.addEventListener("keydown", listener);
  state.keys.push(listener);
}

async function loadCameras() {
  const r = await call("GET", "/cameras");
  state.cameras = new Map(r.items.map((c) => [c.id, c.name]));
  return r.items;
}

async function loadPersons() {
  const r = await call("GET", "/persons?limit=1000");
  state.persons = new Map(r.items.map((p) => [p.id, p.name]));
  return r.items;
}

function wall(view) {
  const grid = h("div", { class: "wall", id: "wall" });
  view.append(h("section", {}, h("h2", {}, "Live wall"), grid));
  const tiles = new Map();
  every(1000, async () => {
    let cams;
    try { cams = (await call("GET", "/cameras")).items; state.cameras = new Map(cams.map((c) => [c.id, c.name])); } catch (e) { grid.replaceChildren(h("p", { class: "error" }, explain(e))); return; }
    if (!cams.length) grid.replaceChildren(h("p", {}, "No cameras yet."));
    for (const c of cams) {
      let t = tiles.get(c.id);
      if (!t) {
        t = { img: h("img", { alt: "Latest analysed frame of " + c.name }), meta: h("div", { class: "meta" }) };
        t.pic = h("div", { class: "pic" }, "no picture yet");
        t.el = h("article", { class: "tile", "data-camera": c.name }, h("a", { href: "#/camera/" + c.id }, t.pic, t.meta));
        tiles.set(c.id, t);
        grid.append(t.el);
      }
      const s = c.status;
      const st = s ? s.state : c.enabled ? "not running here" : "disabled";
      t.meta.replaceChildren(...[
        h("strong", {}, c.name), " ",
        h("span", { class: "state-" + st }, st),
        streamMode(s),
        h("div", { class: "muted" }, s ? `${s.fps.toFixed(1)} fps · ${s.reconnects} reconnects` : ""),
        s && s.last_error ? h("div", { class: "error" }, s.last_error) : null,
      ].flat().filter(Boolean));
      if (s) {
        picture(`/cameras/${c.id}/snapshot.jpg`).then((url) => {
          if (!url) return;
          const old = t.img.src;
          t.img.src = url;
          if (!t.img.isConnected) t.pic.replaceChildren(t.img);
          if (old) { URL.revokeObjectURL(old); state.urls = state.urls.filter((u) => u !== old); }
        });
      }
    }
  });
}

async function appearanceList(query, list, more) {
  const r = await call("GET", "/detections?" + query);
  for (const d of r.items) {
    const thumb = h("img", { class: "thumb", alt: "Face of " + personName(d.person_id) });
    if (d.snapshot_path) picture(`/detections/${d.id}/snapshot.jpg?kind=face`).then((u) => u && (thumb.src = u));
    list.append(h("tr", { class: "appearance" },
      h("td", {}, thumb),
      h("td", {}, h("a", { href: "#/appearance/" + d.id }, personName(d.person_id))),
      h("td", {}, cameraName(d.camera_id)),
      h("td", {}, when(d.detected_at), h("div", { class: "muted" }, d.last_seen_at ? "until " + when(d.last_seen_at) : "ongoing")),
      h("td", {}, "score " + pct(d.best_score ?? d.score)),
    ));
  }
  more.hidden = !r.next_cursor;
  more.dataset.cursor = r.next_cursor || "";
}

async function cameraPage(view, id) {
  const c = await call("GET", "/cameras/" + id);
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  const q = (cursor) => `camera_id=${id}&limit=20` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  more.addEventListener("click", () => appearanceList(q(more.dataset.cursor), rows, more));
  const pic = h("div", { class: "pic" }, "no picture yet");
  view.append(h("section", {}, h("h2", {}, c.name), pic,
    h("p", {}, c.status ? `State ${c.status.state}, ${c.status.fps.toFixed(1)} fps, ${c.status.reconnects} reconnects` : "Not running on this engine.",
      streamMode(c.status)),
    c.status && c.status.last_error ? h("p", { class: "error" }, c.status.last_error) : null,
    mainStream(c.status)));
  view.append(h("section", {}, h("h2", {}, "Recent appearances"), h("table", {}, rows), more));
  every(1000, async () => {
    const url = await picture(`/cameras/${id}/snapshot.jpg`);
    if (url) pic.replaceChildren(h("img", { src: url, alt: "Latest analysed frame of " + c.name }));
  });
  await loadPersons().catch(() => {});
  await appearanceList(q(), rows, more);
}

// The main stream of a camera with a substream: read at its keyframes, faces cropped from them.
const TIME_SOURCES = { rtcp: "timed by RTCP sender reports", pts: "timed by the files' presentation times", arrival: "timed by arrival (no RTCP sender report yet)" };
function mainStream(s) {
  const m = s && s.main_stream;
  if (!m) return null;
  return h("div", { class: "main-stream" },
    h("p", {}, `Main stream: state ${m.state}, ${m.fps.toFixed(1)} fps, ${m.keyframes_decoded} keyframes decoded, ${m.main_embeddings} faces embedded from it, ${m.reconnects} reconnects` +
      (s.time_source ? ` (${TIME_SOURCES[s.time_source] || s.time_source})` : "")),
    m.last_error ? h("p", { class: "error" }, m.last_error) : null);
}

function cameraForm(existing, done) {
  const form = h("form", { class: "camera-form", "aria-label": existing ? "Edit camera " + existing.name : "Add a camera" },
    h("h2", {}, existing ? "Edit " + existing.name : "Add a camera"),
    field("Name", "name", { required: true, value: existing ? existing.name : "" }),
    field("URL (rtsp://… or a video file under the media folder)", "url", { required: true, value: existing ? existing.url : "" }),
    field("Detect stream URL (optional: a low-resolution substream of the same view)", "detect_url", { value: existing ? existing.detect_url || "" : "" }),
    field("Analysed frames per second", "analysis_fps", { type: "number", step: "0.5", value: existing ? existing.analysis_fps : 5 }),
    h("label", {}, h("input", { type: "checkbox", name: "enabled", checked: existing ? existing.enabled : true }), " Enabled"),
    h("p", { class: "error form-error", role: "alert" }),
    h("button", { type: "submit" }, existing ? "Save" : "Add camera"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { name: f.get("name"), analysis_fps: Number(f.get("analysis_fps")), enabled: f.get("enabled") === "on" };
    // An edited URL holds no password (the API hides it): send it only when changed.
    if (!existing || f.get("url") !== existing.url) body.url = f.get("url");
    // Likewise the substream; emptied on edit, "" removes it.
    const detect = f.get("detect_url");
    if (existing ? detect !== (existing.detect_url || "") : detect) body.detect_url = detect;
    try {
      await call(existing ? "PATCH" : "POST", existing ? "/cameras/" + existing.id : "/cameras", body);
      done();
    } catch (e) { showFormError(form, e); }
  });
  return form;
}

async function cameras(view) {
  const table = h("tbody");
  const section = h("section", {}, h("h2", {}, "Cameras"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "URL"), h("th", {}, "State"), h("th", {}, ""))), table));
  const editor = h("div");
  view.append(section, editor);
  const refresh = async () => {
    const cams = (await call("GET", "/cameras")).items;
    table.replaceChildren(...cams.map((c) => h("tr", { "data-camera": c.name },
      h("td", {}, h("a", { href: "#/camera/" + c.id }, c.name)),
      h("td", {}, c.url, c.detect_url ? h("div", { class: "muted" }, "substream " + c.detect_url) : null),
      h("td", {}, c.status ? c.status.state : c.enabled ? "not running here" : "disabled", streamMode(c.status)),
      h("td", { class: "row-actions" },
        write(h("button", { type: "button", class: "secondary write", onclick: () => editor.replaceChildren(cameraForm(c, reload)) }, "Edit")),
        write(h("button", { type: "button", class: "secondary write", onclick: async () => { await call("PATCH", "/cameras/" + c.id, { enabled: !c.enabled }); reload(); } }, c.enabled ? "Disable" : "Enable")),
        write(h("button", { type: "button", class: "danger write", "aria-label": "Delete camera " + c.name, onclick: async () => {
          if (confirm(`Delete camera ${c.name}? Its appearances are kept.`)) { await call("DELETE", "/cameras/" + c.id); reload(); }
        } }, "Delete")),
      ))));
  };
  const reload = () => { fill(editor, write(cameraForm(null, reload))); refresh(); };
  reload();
}

function webcamButton(onPhoto) {
  const status = h("span", { class: "muted", role: "status" });
  const video = h("video", { autoplay: true, playsinline: true, hidden: true, "aria-label": "Webcam preview" });
  const take = h("button", { type: "button", class: "secondary", hidden: true }, "Take photo");
  const start = h("button", { type: "button", class: "secondary" }, "Use webcam");
  start.addEventListener("click", async () => {
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
      video.hidden = false; take.hidden = false;
    } catch (e) { status.textContent = "No webcam available: " + e.message; }
  });
  take.addEventListener("click", () => {
    const canvas = h("canvas", { width: video.videoWidth, height: video.videoHeight });
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => { onPhoto(new File([blob], "webcam.jpg", { type: "image/jpeg" })); status.textContent = "Photo taken."; }, "image/jpeg", 0.92);
  });
  return h("div", {}, start, " ", take, " ", status, video);
}

function enrollForm(person, done) {
  const extra = [];
  const form = h("form", { id: person ? "add-faces" : "enroll", "aria-label": person ? "Add faces to " + person.name : "Enroll a person" },
    h("h2", {}, person ? "Add faces to " + person.name : "Enroll a person"),
    person ? null : field("Name", "name", { required: true }),
    h("label", { for: "photos-" + (person ? person.id : "new") }, "Photos (one face each; several are better)"),
    h("input", { id: "photos-" + (person ? person.id : "new"), name: "photos", type: "file", accept: "image/jpeg,image/png,image/webp", multiple: true }),
    webcamButton((file) => extra.push(file)),
    h("p", { class: "error form-error", role: "alert" }),
    h("p", { class: "ok form-ok", role: "status" }),
    h("button", { type: "submit" }, person ? "Add faces" : "Enroll"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData();
    if (!person) f.append("name", form.elements.name.value);
    for (const file of [...form.elements.photos.files, ...extra]) f.append("photos", file, file.name);
    $(".form-error", form).textContent = ""; $(".form-ok", form).textContent = "";
    try {
      const r = await call("POST", person ? `/persons/${person.id}/faces` : "/persons", f);
      const warnings = (r.photos || []).filter((p) => p.warning).map((p) => p.warning);
      $(".form-ok", form).textContent = `Enrolled ${r.person ? r.person.name : person.name}: ${r.faces_enrolled ?? ""} face(s).` + (warnings.length ? " Warning: " + warnings.join("; ") : "");
      done();
    } catch (e) { showFormError(form, e); }
  });
  return form;
}

async function people(view) {
  const search = h("input", { id: "person-search", type: "search", placeholder: "Search by name" });
  const rows = h("tbody");
  const editor = h("div");
  view.append(h("section", {}, h("h2", {}, "People"), h("label", { for: "person-search" }, "Search"), search, h("table", {}, rows)), editor);
  const refresh = async () => {
    const q = search.value ? "&search=" + encodeURIComponent(search.value) : "";
    const r = await call("GET", "/persons?limit=200" + q);
    rows.replaceChildren(...r.items.map((p) => h("tr", { "data-person": p.name },
      h("td", {}, h("a", { href: "#/person/" + p.id, "aria-label": "Timeline of " + p.name }, p.name)), h("td", {}, p.faces + " face(s)"), h("td", {}, when(p.created_at)),
      h("td", { class: "row-actions" },
        write(h("button", { type: "button", class: "secondary write", onclick: () => editor.replaceChildren(enrollForm(p, refresh)) }, "Add faces")),
        write(h("button", { type: "button", class: "danger write", "aria-label": "Erase " + p.name, onclick: () => erase(p, "biometrics") }, "Erase")),
        write(h("button", { type: "button", class: "danger write", "aria-label": "Erase every trace of " + p.name, onclick: () => erase(p, "all") }, "Erase all"))))));
  };
  // What an erasure removed, in words (the API answers counts).
  const erase = async (p, scope) => {
    const what = scope === "all"
      ? `Erase every trace of ${p.name}: faces, photos, appearances and their snapshots?`
      : `Erase ${p.name}: faces, photos and the face snapshots of their appearances? Their appearances stay, as unknown faces.`;
    if (!confirm(what)) return;
    const r = await call("DELETE", `/persons/${p.id}?erase=${scope}`);
    const n = r.removed;
    editor.replaceChildren(h("p", { class: "ok", role: "status", id: "erased" },
      `Erased ${p.name}: ${n.embeddings} face(s), ${n.photos} photo(s), ${n.face_snapshots} face snapshot(s)` +
      (scope === "all" ? `, ${n.detections} appearance(s), ${n.frame_snapshots} context frame(s).` : `; ${r.detections_unlinked} appearance(s) kept as unknown faces.`)));
    refresh();
  };
  search.addEventListener("input", refresh);
  fill(editor, write(enrollForm(null, refresh)));
  await refresh();
}

async function appearances(view) {
  const [cams, persons] = await Promise.all([call("GET", "/cameras"), loadPersons()]);
  const form = h("form", { id: "filters", "aria-label": "Filter appearances" },
    h("label", { for: "flt-camera" }, "Camera"),
    h("select", { id: "flt-camera", name: "camera_id" }, h("option", { value: "" }, "any"), cams.items.map((c) => h("option", { value: c.id }, c.name))),
    h("label", { for: "flt-person" }, "Person"),
    h("select", { id: "flt-person", name: "person_id" }, h("option", { value: "" }, "any"), persons.map((p) => h("option", { value: p.id }, p.name))),
    h("label", { for: "flt-since" }, "From"), h("input", { id: "flt-since", name: "since", type: "datetime-local" }),
    h("label", { for: "flt-until" }, "To"), h("input", { id: "flt-until", name: "until", type: "datetime-local" }),
    h("p", {}, h("button", { type: "submit" }, "Show")),
    h("p", { class: "error form-error", role: "alert" }),
  );
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  view.append(form, h("section", {}, h("h2", {}, "Appearances"), h("table", { id: "appearances" }, rows), more));
  const query = (cursor) => {
    const p = new URLSearchParams({ limit: "25" });
    for (const k of ["camera_id", "person_id"]) if (form.elements[k].value) p.set(k, form.elements[k].value);
    for (const k of ["since", "until"]) if (form.elements[k].value) p.set(k, new Date(form.elements[k].value).toISOString());
    if (cursor) p.set("cursor", cursor);
    return p.toString();
  };
  const show = async () => {
    rows.replaceChildren();
    try { await appearanceList(query(), rows, more); } catch (e) { showFormError(form, e); }
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
  more.addEventListener("click", () => appearanceList(query(more.dataset.cursor), rows, more));
  await show();
}

async function appearance(view, id) {
  const d = await call("GET", "/detections/" + id);
  await loadPersons().catch(() => {});
  const face = h("img", { class: "thumb", id: "face-snapshot", alt: "Face of " + personName(d.person_id) });
  const frame = h("img", { id: "frame-snapshot", alt: "Frame in which " + personName(d.person_id) + " was seen", class: "frame-snapshot" });
  view.append(h("section", {}, h("h2", {}, personName(d.person_id)),
    h("p", {}, `${cameraName(d.camera_id)} · ${when(d.detected_at)}` + (d.last_seen_at ? " to " + when(d.last_seen_at) : " (ongoing)")),
    h("p", {}, `Best score ${pct(d.best_score ?? d.score)} · ${d.frames} frame(s)`),
    d.snapshot_path ? [face, h("div", {}, frame)] : h("p", { class: "muted" }, "No snapshot was written."),
    d.person_id != null ? h("p", {}, h("a", { href: "#/person/" + d.person_id }, "Timeline of " + personName(d.person_id))) : null,
    d.unknown_id != null ? h("p", {}, "Grouped as ", h("a", { id: "appearance-unknown", href: "#/unknown/" + d.unknown_id }, "unknown face #" + d.unknown_id)) : null,
    h("p", {}, h("a", { id: "find-elsewhere", href: "#/search/" + id }, "Find this face elsewhere"))));
  if (d.snapshot_path) {
    picture(`/detections/${id}/snapshot.jpg?kind=face`).then((u) => u && (face.src = u));
    picture(`/detections/${id}/snapshot.jpg?kind=frame`).then((u) => u && (frame.src = u));
  }
}

// ---- review queue: recognitions nobody has reviewed, one key or click each ---------------------

async function review(view) {
  const list = h("ol", { id: "review-list", class: "cards", "aria-label": "Recognitions to review" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  view.append(h("section", { id: "review" }, h("h2", {}, "Review queue"),
    h("p", {}, "Recent recognitions nobody has reviewed, newest first. Confirming enrols the face for the person; rejecting tells the engine it was someone else."),
    h("p", { id: "review-keys", class: "legend muted" }, "Keys: ", kbd("j"), " or ", kbd("↓"), " next · ", kbd("k"), " or ", kbd("↑"), " previous · ",
      state.admin ? [kbd("c"), " confirm · ", kbd("r"), " reject · ", kbd("u"), " undo · "] : null, kbd("o"), " open the appearance"),
    list, more));
  const cards = [];
  let sel = -1;
  let acted = []; // the cards acted on, the latest last: what "u" undoes when the selected card has nothing to undo

  const select = (i) => {
    if (i < 0 || i >= cards.length) return;
    if (cards[sel]) { cards[sel].el.classList.remove("selected"); cards[sel].el.removeAttribute("aria-current"); }
    sel = i;
    const el = cards[i].el;
    el.classList.add("selected"); el.setAttribute("aria-current", "true");
    el.scrollIntoView({ block: "nearest" });
  };
  const paint = (c) => {
    c.el.classList.toggle("confirmed", c.review === "confirmed");
    c.el.classList.toggle("rejected", c.review === "rejected");
    c.el.dataset.review = c.review || "";
    if (c.confirm) { c.confirm.hidden = c.reject.hidden = !!c.review; c.undo.hidden = !c.review; }
  };
  const act = async (c, kind) => {
    if (!state.admin || c.busy) return;
    const i = cards.indexOf(c);
    select(i);
    c.busy = true; c.err.textContent = "";
    try {
      if (kind === "undo") {
        await call("DELETE", `/detections/${c.d.id}/review`);
        c.review = null; c.out.textContent = "Undone: unreviewed again.";
        acted = acted.filter((x) => x !== c);
      } else {
        const r = await call("POST", `/detections/${c.d.id}/${kind}`);
        c.review = r.review;
        c.out.textContent = (r.review === "confirmed" ? "Confirmed as " : "Rejected: not ") + personName(r.person_id) + (r.warning ? ` (${r.warning})` : "");
        acted = acted.filter((x) => x !== c).concat(c);
        if (sel === i) select(i + 1); // on to the next one
      }
      paint(c);
    } catch (e) { c.err.textContent = explain(e); }
    c.busy = false;
  };
  const card = (d) => {
    const who = personName(d.person_id);
    const img = h("img", { alt: "Face of " + who });
    if (d.snapshot_path) picture(`/detections/${d.id}/snapshot.jpg?kind=face`).then((u) => u && (img.src = u));
    const c = { d, review: d.review, out: h("p", { class: "ok outcome", role: "status" }), err: h("p", { class: "error card-error", role: "alert" }) };
    if (state.admin) {
      c.confirm = h("button", { type: "button", class: "write confirm", "aria-label": "Confirm: this is " + who, onclick: () => act(c, "confirm") }, "Confirm");
      c.reject = h("button", { type: "button", class: "danger write reject", "aria-label": "Reject: this is not " + who, onclick: () => act(c, "reject") }, "Reject");
      c.undo = h("button", { type: "button", class: "secondary write undo", onclick: () => act(c, "undo") }, "Undo");
    }
    c.el = h("li", { class: "tile review-card", "data-detection": d.id, onclick: () => select(cards.indexOf(c)) },
      h("div", { class: "pic" }, d.snapshot_path ? img : "no face kept"),
      h("div", { class: "meta" },
        h("strong", {}, d.person_id != null ? h("a", { href: "#/person/" + d.person_id }, who) : who), ` score ${pct(d.best_score ?? d.score)}`,
        h("div", { class: "muted" }, `${cameraName(d.camera_id)} · ${when(d.detected_at)}` + (d.last_seen_at ? "" : " (ongoing)")),
        c.out, c.err,
        h("div", { class: "row-actions" }, c.confirm, c.reject, c.undo,
          h("a", { href: "#/appearance/" + d.id, "aria-label": "Open the appearance of " + who }, "Open"))));
    paint(c);
    return c;
  };
  const page = async (cursor) => {
    const r = await call("GET", "/detections?recognized=true&reviewed=false&limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    for (const d of r.items) { const c = card(d); cards.push(c); list.append(c.el); }
    if (!cards.length) list.replaceWith(h("p", { id: "review-empty" }, "Nothing to review: every recent recognition has been reviewed."));
    if (sel < 0) select(0);
    more.hidden = !r.next_cursor; more.dataset.cursor = r.next_cursor || "";
  };
  more.addEventListener("click", () => page(more.dataset.cursor).catch((e) => more.after(h("p", { class: "error", role: "alert" }, explain(e)))));
  onKey((e) => {
    const c = cards[sel];
    if (!c) return;
    const k = e.key;
    if (k === "j" || k === "ArrowDown") select(sel + 1);
    else if (k === "k" || k === "ArrowUp") select(sel - 1);
    else if (k === "o") location.hash = "#/appearance/" + c.d.id;
    else if (k === "c" && state.admin && !c.review) act(c, "confirm");
    else if (k === "r" && state.admin && !c.review) act(c, "reject");
    else if (k === "u" && state.admin) {
      const target = c.review ? c : acted[acted.length - 1];
      if (target) act(target, "undo");
    } else return;
    e.preventDefault();
  });
  await Promise.all([loadPersons().catch(() => {}), loadCameras().catch(() => {})]);
  await page();
}

// ---- unknown faces: identities of faces that match nobody, to name or merge --------------------

// An unknown identity's card: best face, appearances, when and where; for admins, the forms that name
// it (a new person), merge it into a person, or merge it with another unknown identity.
function unknownCard(u, persons, onMerged) {
  const img = h("img", { alt: "Best face of unknown #" + u.id });
  if (u.best_face_url) picture(apiPath(u.best_face_url)).then((x) => x && (img.src = x));
  const done = h("p", { class: "ok", role: "status" });
  const named = u.named_person_id != null;
  const forms = [];
  const send = (form, path, body, after) => async (ev) => {
    ev.preventDefault();
    try { after(await call("POST", path, body())); } catch (e) { showFormError(form, e); }
  };
  if (state.admin && !named) {
    const nameForm = h("form", { class: "name-form", "aria-label": "Name unknown #" + u.id },
      field("Name (a new person)", "name", { required: true }), h("p", { class: "error form-error", role: "alert" }), h("button", { type: "submit" }, "Name"));
    const personForm = h("form", { class: "merge-person-form", "aria-label": "Merge unknown #" + u.id + " into a person" },
      h("label", { for: "mp-" + u.id }, "Merge into person"),
      h("select", { id: "mp-" + u.id, name: "person_id", required: true }, h("option", { value: "" }, "choose…"), persons.map((p) => h("option", { value: p.id }, p.name))),
      h("p", { class: "error form-error", role: "alert" }), h("button", { type: "submit", class: "secondary" }, "Merge into person"));
    const unknownForm = h("form", { class: "merge-unknown-form", "aria-label": "Merge unknown #" + u.id + " with another unknown face" },
      h("label", { for: "mu-" + u.id }, "Same as unknown #"), h("input", { id: "mu-" + u.id, name: "into", type: "number", min: "1", step: "1", required: true }),
      h("p", { class: "error form-error", role: "alert" }), h("button", { type: "submit", class: "secondary" }, "Merge"));
    const namedAs = async (r) => {
      await loadPersons().catch(() => {});
      forms.forEach((f) => f.remove());
      done.replaceChildren(`Named `, h("a", { href: "#/person/" + r.person_id }, personName(r.person_id)), `: ${r.enrolled.length} face(s) enrolled` +
        (r.skipped && r.skipped.length ? `, ${r.skipped.length} left out (not good enough).` : "."));
    };
    nameForm.addEventListener("submit", send(nameForm, `/unknowns/${u.id}/name`, () => ({ name: nameForm.elements.name.value.trim() }), namedAs));
    personForm.addEventListener("submit", send(personForm, `/unknowns/${u.id}/name`, () => ({ person_id: Number(personForm.elements.person_id.value) }), namedAs));
    unknownForm.addEventListener("submit", send(unknownForm, `/unknowns/${u.id}/merge`, () => ({ into: Number(unknownForm.elements.into.value) }), (r) => onMerged(u, r)));
    forms.push(nameForm, personForm, unknownForm);
  }
  const first = u.first_seen_at ?? u.first_seen, last = u.last_seen_at ?? u.last_seen;
  return h("article", { class: "tile unknown-card", "data-unknown": u.id },
    h("a", { href: "#/unknown/" + u.id, "aria-label": "Unknown #" + u.id + ": its appearances" }, h("div", { class: "pic" }, u.best_face_url ? img : "no face kept")),
    h("div", { class: "meta" },
      h("strong", {}, h("a", { href: "#/unknown/" + u.id }, "Unknown #" + u.id)), " · " + plural(u.appearances ?? 0, "appearance"),
      h("div", { class: "muted" }, `First seen ${when(first)} · last seen ${when(last)}`),
      h("div", { class: "muted" }, "On " + ((u.cameras || []).length ? u.cameras.map(cameraName).join(", ") : "no camera left")),
      named ? h("p", {}, "Named: ", h("a", { href: "#/person/" + u.named_person_id }, personName(u.named_person_id))) : null,
      done, forms));
}

async function unknowns(view) {
  const [persons] = await Promise.all([loadPersons().catch(() => []), loadCameras().catch(() => {})]);
  const grid = h("div", { id: "unknowns-list", class: "wall" });
  const status = h("p", { id: "unknowns-status", class: "ok", role: "status" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  view.append(h("section", { id: "unknowns" }, h("h2", {}, "Unknown faces"),
    h("p", {}, "Faces that match nobody, grouped into identities across cameras and days, the newest first." +
      (state.admin ? " Name one to enrol its faces as a new person, merge it into a person, or merge two that are the same face." : "")),
    status, grid, more));
  const page = async (before) => {
    const r = await call("GET", "/unknowns?limit=50" + (before ? "&before=" + encodeURIComponent(before) : ""));
    if (!before && !r.items.length) grid.replaceChildren(h("p", { id: "unknowns-empty" }, "No unknown faces: every face seen so far matched someone, or none has been grouped yet."));
    grid.append(...r.items.map((u) => unknownCard(u, persons, merged)));
    more.hidden = r.next_before == null; more.dataset.before = r.next_before ?? "";
  };
  const merged = (u, r) => {
    status.replaceChildren(`Unknown #${u.id} merged into `, h("a", { href: "#/unknown/" + r.id }, "unknown #" + r.id), ".");
    grid.replaceChildren();
    page().catch((e) => grid.replaceChildren(h("p", { class: "error", role: "alert" }, explain(e))));
  };
  more.addEventListener("click", () => page(more.dataset.before).catch((e) => more.after(h("p", { class: "error", role: "alert" }, explain(e)))));
  await page();
}

async function unknownPage(view, id) {
  const [u, persons] = await Promise.all([call("GET", "/unknowns/" + id), loadPersons().catch(() => []), loadCameras().catch(() => {})]);
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  const q = (cursor) => `unknown_id=${id}&limit=50` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  more.addEventListener("click", () => appearanceList(q(more.dataset.cursor), rows, more));
  view.append(h("section", { id: "unknown" }, h("h2", {}, "Unknown face #" + u.id),
    h("div", { class: "wall" }, unknownCard(u, persons, (_, r) => { location.hash = "#/unknown/" + r.id; }))),
    h("section", {}, h("h2", {}, "Its appearances"), h("table", { id: "unknown-appearances" }, rows), more));
  await appearanceList(q(), rows, more);
}

// ---- a person's timeline: their appearances by day, across cameras ----------------------------

async function personPage(view, id) {
  const [p] = await Promise.all([call("GET", "/persons/" + id), loadCameras().catch(() => {})]);
  state.persons.set(p.id, p.name);
  const groupsShown = h("span", { id: "person-groups-shown" }, (p.groups || []).join(", ") || "none");
  const summary = h("tbody");
  const days = h("div", { id: "timeline-days" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  let form = null;
  if (state.admin) {
    form = h("form", { id: "person-groups", "aria-label": "Groups of " + p.name },
      field("Groups (separated by commas)", "groups", { value: (p.groups || []).join(", "), placeholder: "staff, vip" }),
      h("p", { class: "error form-error", role: "alert" }), h("p", { class: "ok form-ok", role: "status" }),
      h("button", { type: "submit" }, "Save groups"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $(".form-ok", form).textContent = "";
      try {
        const r = await call("PATCH", "/persons/" + id, { groups: csv(form.elements.groups.value) });
        const groups = r.groups || csv(form.elements.groups.value);
        groupsShown.textContent = groups.join(", ") || "none";
        form.elements.groups.value = groups.join(", ");
        clearFormError(form);
        $(".form-ok", form).textContent = "Groups saved.";
      } catch (e) { showFormError(form, e); }
    });
  }
  view.append(h("section", { id: "person" }, h("h2", {}, p.name),
    h("p", {}, `${plural(p.faces ?? 0, "enrolled face")} · enrolled ${when(p.created_at)}`),
    h("p", {}, "Groups: ", groupsShown), form),
    h("section", {}, h("h2", {}, "By camera"), h("table", { id: "timeline-cameras" },
      h("thead", {}, h("tr", {}, h("th", {}, "Camera"), h("th", {}, "Appearances"), h("th", {}, "Last seen"))), summary)),
    h("section", { id: "timeline" }, h("h2", {}, "Timeline"), days, more));

  const items = [];
  const thumbs = new Map(); // detection id → its thumbnail, fetched once
  const thumb = (d) => {
    if (!thumbs.has(d.id)) {
      const img = h("img", { class: "thumb", alt: "Face of " + p.name + " on " + cameraName(d.camera_id) });
      if (d.snapshot_path) picture(`/detections/${d.id}/snapshot.jpg?kind=face`).then((u) => u && (img.src = u));
      thumbs.set(d.id, img);
    }
    return thumbs.get(d.id);
  };
  const time = (iso) => new Date(iso).toLocaleTimeString();
  const at = (iso) => Date.parse(iso);
  const render = () => {
    const byDay = new Map();
    const byCamera = new Map();
    for (const d of [...items].sort((a, b) => at(b.detected_at) - at(a.detected_at))) {
      const day = new Date(d.detected_at).toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
      if (!byDay.has(day)) byDay.set(day, []);
      byDay.get(day).push(d);
      const c = byCamera.get(d.camera_id) || { n: 0, last: null };
      const seen = d.last_seen_at || d.detected_at;
      c.n += 1; if (!c.last || at(seen) > at(c.last)) c.last = seen;
      byCamera.set(d.camera_id, c);
    }
    if (!items.length) { days.replaceChildren(h("p", { id: "timeline-empty" }, `No appearance of ${p.name} is stored.`)); summary.replaceChildren(); return; }
    days.replaceChildren(...[...byDay].map(([day, ds]) => h("div", { class: "timeline-day" }, h("h3", {}, day),
      h("ol", {}, ds.map((d) => h("li", { class: "timeline-entry", "data-detection": d.id, "data-camera": cameraName(d.camera_id) },
        thumb(d),
        h("div", {}, h("strong", {}, time(d.detected_at) + " – " + (d.last_seen_at ? time(d.last_seen_at) : "ongoing")),
          h("div", {}, `${cameraName(d.camera_id)} · score ${pct(d.best_score ?? d.score)}` + (d.review ? ` · ${d.review}` : "")),
          h("a", { href: "#/appearance/" + d.id, "aria-label": `Open the appearance at ${time(d.detected_at)} on ${cameraName(d.camera_id)}` }, "Open"))))))));
    summary.replaceChildren(...[...byCamera].sort((a, b) => at(b[1].last) - at(a[1].last)).map(([cam, c]) => h("tr", { "data-camera": cameraName(cam) },
      h("td", {}, cam != null ? h("a", { href: "#/camera/" + cam }, cameraName(cam)) : cameraName(cam)),
      h("td", {}, String(c.n)), h("td", {}, when(c.last)))));
  };
  const page = async (cursor) => {
    const r = await call("GET", `/detections?person_id=${id}&limit=100` + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    items.push(...r.items);
    more.hidden = !r.next_cursor; more.dataset.cursor = r.next_cursor || "";
    render();
  };
  more.addEventListener("click", () => page(more.dataset.cursor).catch((e) => more.after(h("p", { class: "error", role: "alert" }, explain(e)))));
  await page();
}

// ---- alert rules: who, where and when makes an alert, and where it goes -----------------------

const DAYS = [["mon", "Mon"], ["tue", "Tue"], ["wed", "Wed"], ["thu", "Thu"], ["fri", "Fri"], ["sat", "Sat"], ["sun", "Sun"]];
const OUTPUTS = [["events", "Live events (the event stream and these alerts)"], ["webhooks", "Webhooks"], ["mqtt", "MQTT"]];
const dayName = (d) => (DAYS.find(([v]) => v === d) || [d, d])[1];

function describeWho(r) {
  if (r.who === "anyone") return "anyone";
  if (r.who === "unknown") {
    return "unknown faces" + ((r.unknown_ids || []).length ? " #" + r.unknown_ids.join(", #") : "") + (r.min_days > 1 ? `, seen on ${r.min_days} days or more` : "");
  }
  const who = [...(r.person_ids || []).map(personName), ...(r.groups || []).map((g) => "group " + g)];
  return "known: " + (who.length ? who.join(", ") : "anyone recognised") + (r.min_score != null ? `, score ≥ ${r.min_score}` : "");
}

function describeWindows(ws) {
  if (!ws || !ws.length) return "always";
  return ws.map((w) => ((w.days || []).length && w.days.length < 7 ? w.days.map(dayName).join(" ") : "every day") +
    ` ${w.start}–${w.end}` + (w.end < w.start ? " (overnight)" : "")).join("; ");
}

function windowRow(w = {}) {
  const n = Math.random().toString(36).slice(2, 7);
  const row = h("fieldset", { class: "window-row" }, h("legend", {}, "Window"),
    h("div", { class: "days" }, DAYS.map(([v, label]) => h("label", { class: "inline" },
      h("input", { type: "checkbox", class: "win-day", value: v, checked: (w.days || []).includes(v) }), " " + label))),
    h("label", { for: "ws-" + n }, "From"), h("input", { id: "ws-" + n, class: "win-start", type: "time", step: "60", required: true, value: w.start || "00:00" }),
    h("label", { for: "we-" + n }, "To (its last minute)"), h("input", { id: "we-" + n, class: "win-end", type: "time", step: "60", required: true, value: w.end || "23:59" }),
    h("p", {}, h("button", { type: "button", class: "secondary remove-window", onclick: () => { const list = row.parentNode; row.remove(); numberWindows(list); } }, "Remove this window")));
  return row;
}

function numberWindows(list) {
  list.querySelectorAll(".window-row > legend").forEach((l, i) => (l.textContent = "Window " + (i + 1)));
}

function ruleForm(persons, cams, rule, done) {
  const multi = (id, name, options, chosen) => h("select", { id, name, multiple: true, size: String(Math.min(6, Math.max(3, options.length))), "aria-describedby": id + "-e" },
    options.map(([v, label]) => h("option", { value: v, selected: chosen.includes(v) }, label)));
  const slot = (name, id) => h("span", { class: "field-error", id: id ? id + "-e" : null, "data-error-for": name, role: "alert" });
  const r = rule || {};
  const windows = h("div", { class: "window-list" }, (r.windows || []).map((w) => windowRow(w)));
  const whoSelect = h("select", { id: "rule-who", name: "who" },
    [["known", "Known: recognised persons"], ["unknown", "Unknown faces"], ["anyone", "Anyone"]].map(([v, label]) => h("option", { value: v, selected: (r.who || "known") === v }, label)));
  const known = h("fieldset", { class: "who-known" }, h("legend", {}, "Which known persons (none chosen: any)"),
    h("label", { for: "rule-persons" }, "Persons"), multi("rule-persons", "person_ids", persons.map((p) => [String(p.id), p.name]), (r.person_ids || []).map(String)), slot("person_ids", "rule-persons"),
    field("Or in one of these groups (separated by commas)", "groups", { value: (r.groups || []).join(", ") }),
    field("Minimum score (empty: the engine's match threshold)", "min_score", { type: "number", min: "-1", max: "1", step: "0.01", value: r.min_score ?? "" }));
  const unknown = h("fieldset", { class: "who-unknown" }, h("legend", {}, "Which unknown faces"),
    field("Unknown face numbers (separated by commas; empty: any)", "unknown_ids", { value: (r.unknown_ids || []).join(", ") }),
    field("Seen on at least this many different days", "min_days", { type: "number", min: "1", max: "366", step: "1", value: r.min_days ?? 1 }));
  const form = h("form", { id: "rule-form", "aria-label": rule ? "Edit rule " + rule.name : "Add a rule" },
    h("h2", {}, rule ? "Edit rule " + rule.name : "Add a rule"),
    field("Name", "name", { required: true, value: r.name || "" }),
    h("label", {}, h("input", { type: "checkbox", name: "enabled", checked: r.enabled ?? true }), " Enabled"),
    h("label", { for: "rule-who" }, "Who"), whoSelect,
    known, unknown,
    h("label", { for: "rule-cameras" }, "Cameras (none chosen: every camera)"),
    multi("rule-cameras", "camera_ids", cams.map((c) => [String(c.id), c.name]), (r.camera_ids || []).map(String)), slot("camera_ids", "rule-cameras"),
    h("fieldset", { id: "rule-windows" }, h("legend", {}, "When (site time; no window: always)"),
      h("p", { class: "muted" }, "No day ticked: every day. A window whose end comes before its start runs overnight."),
      windows, slot("windows"),
      h("button", { type: "button", class: "secondary", id: "add-window", onclick: () => { windows.append(windowRow()); numberWindows(windows); } }, "Add a window")),
    h("fieldset", { id: "rule-outputs" }, h("legend", {}, "Send to"),
      OUTPUTS.map(([v, label]) => h("label", { class: "inline" }, h("input", { type: "checkbox", name: "outputs", value: v, checked: (r.outputs || OUTPUTS.map((o) => o[0])).includes(v) }), " " + label)),
      slot("outputs")),
    h("p", { class: "error form-error", role: "alert" }),
    h("div", { class: "row-actions" }, h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: () => done(null) }, "Cancel")));
  numberWindows(windows);
  const showWho = () => { known.hidden = whoSelect.value !== "known"; unknown.hidden = whoSelect.value !== "unknown"; };
  whoSelect.addEventListener("change", showWho);
  showWho();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const el = form.elements;
    const chosen = (sel) => [...sel.selectedOptions].map((o) => Number(o.value));
    const spec = {
      name: el.name.value.trim(), enabled: el.enabled.checked, who: whoSelect.value,
      camera_ids: chosen(el.camera_ids),
      windows: [...windows.querySelectorAll(".window-row")].map((row) => ({
        days: [...row.querySelectorAll(".win-day:checked")].map((c) => c.value),
        start: $(".win-start", row).value.slice(0, 5), end: $(".win-end", row).value.slice(0, 5),
      })),
      outputs: [...form.querySelectorAll("input[name=outputs]:checked")].map((c) => c.value),
    };
    if (spec.who === "known") {
      Object.assign(spec, { person_ids: chosen(el.person_ids), groups: csv(el.groups.value), min_score: el.min_score.value === "" ? null : Number(el.min_score.value) });
    } else if (spec.who === "unknown") {
      spec.unknown_ids = csv(el.unknown_ids.value).map(Number);
      spec.min_days = Number(el.min_days.value || 1);
      if (!spec.unknown_ids.every((n) => Number.isInteger(n) && n > 0)) {
        showFormError(form, { code: "invalid_rule", message: "unknown_ids: whole numbers separated by commas, such as 12, 40" });
        return;
      }
    }
    try {
      const saved = await call(rule ? "PUT" : "POST", rule ? "/alert-rules/" + rule.id : "/alert-rules", spec);
      done(saved);
    } catch (e) { showFormError(form, e); }
  });
  return form;
}

async function rules(view) {
  const [persons, cams] = await Promise.all([loadPersons().catch(() => []), loadCameras().catch(() => [])]);
  const rows = h("tbody");
  const zone = h("p", { id: "rules-timezone", class: "muted" });
  const status = h("p", { id: "rules-status", class: "ok", role: "status" });
  const failed = h("p", { class: "error", role: "alert" });
  const editor = h("div");
  view.append(h("section", { id: "rules" }, h("h2", {}, "Alert rules"),
    h("p", {}, "Which appearances raise an alert (who, on which cameras, when) and where it goes."), zone, status, failed,
    h("table", { id: "rules-table" }, h("thead", {}, h("tr", {}, ["Name", "State", "Who", "Cameras", "When", "Sent to", "Source", ""].map((t) => h("th", {}, t)))), rows)),
  editor);
  const edit = (rule) => {
    fill(editor, write(ruleForm(persons, cams, rule, (saved) => {
      if (saved) status.textContent = `Rule ${saved.name} saved.`;
      edit(null);
      refresh();
    })));
    if (rule) { editor.scrollIntoView({ block: "start" }); $("#rule-form input[name=name]").focus(); }
  };
  const refresh = async () => {
    const r = await call("GET", "/alert-rules");
    zone.textContent = "Times are the site's time" + (r.timezone ? ": " + r.timezone + "." : ".");
    if (!r.items.length) { rows.replaceChildren(h("tr", {}, h("td", { colspan: "8", id: "rules-empty" }, "No alert rules yet."))); return; }
    rows.replaceChildren(...r.items.map((rule) => h("tr", { "data-rule": rule.name },
      h("td", {}, rule.name),
      h("td", { class: "rule-state" }, rule.enabled ? "enabled" : "disabled"),
      h("td", {}, describeWho(rule)),
      h("td", {}, (rule.camera_ids || []).length ? rule.camera_ids.map(cameraName).join(", ") : "every camera"),
      h("td", {}, describeWindows(rule.windows)),
      h("td", {}, (rule.outputs || []).join(", ")),
      h("td", {}, rule.source === "config" ? "config file (read-only)" : "API", rule.updated_by ? h("div", { class: "muted" }, `by ${rule.updated_by}, ${when(rule.updated_at)}`) : null),
      h("td", { class: "row-actions" }, rule.source === "api" && rule.id != null ? [
        write(h("button", { type: "button", class: "secondary write", "aria-label": "Edit rule " + rule.name, onclick: () => edit(rule) }, "Edit")),
        write(h("button", { type: "button", class: "danger write", "aria-label": "Delete rule " + rule.name, onclick: async () => {
          if (!confirm(`Delete the rule ${rule.name}?`)) return;
          failed.textContent = status.textContent = "";
          try { await call("DELETE", "/alert-rules/" + rule.id); status.textContent = `Rule ${rule.name} deleted.`; } catch (e) { failed.textContent = explain(e); }
          refresh();
        } }, "Delete")),
      ] : null))));
  };
  edit(null);
  await refresh();
}

function identify(view) {
  const input = h("input", { id: "identify-photo", type: "file", accept: "image/jpeg,image/png,image/webp" });
  const canvas = h("canvas", { class: "boxes", hidden: true, "aria-label": "The photo with the faces found" });
  const out = h("div", { id: "identify-result", "aria-live": "polite" });
  const drop = h("section", { id: "identify" }, h("h2", {}, "Identify"),
    h("p", {}, "Drop a photo here or choose one: every face is boxed with its matches."),
    h("label", { for: "identify-photo" }, "Photo"), input, canvas, out);
  const run = async (file) => {
    out.replaceChildren(h("p", { class: "muted" }, "Looking…"));
    const f = new FormData(); f.append("photo", file, file.name);
    try {
      const r = await call("POST", "/identify", f);
      const img = new Image();
      img.onload = () => {
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; canvas.hidden = false;
        const g = canvas.getContext("2d"); g.drawImage(img, 0, 0);
        g.lineWidth = Math.max(2, img.naturalWidth / 300); g.font = `${Math.max(14, img.naturalWidth / 40)}px sans-serif`;
        for (const face of r.faces) {
          const m = face.matches[0]; g.strokeStyle = g.fillStyle = m ? "#1b7a3e" : "#b3261e";
          g.strokeRect(face.box.x, face.box.y, face.box.width, face.box.height);
          g.fillText(m ? `${m.name} ${m.score.toFixed(2)}` : "unknown", face.box.x, Math.max(12, face.box.y - 4));
        }
        URL.revokeObjectURL(img.src);
      };
      img.src = URL.createObjectURL(file);
      out.replaceChildren(r.faces.length ? h("ul", {}, r.faces.map((face, i) => h("li", {},
        `Face ${i + 1}: ` + (face.matches.length ? face.matches.map((m) => `${m.name} (${m.score.toFixed(2)})`).join(", ") : "no match")))) : h("p", {}, "No face found."));
    } catch (e) { out.replaceChildren(h("p", { class: "error", role: "alert" }, explain(e))); }
  };
  input.addEventListener("change", () => input.files[0] && run(input.files[0]));
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) run(e.dataTransfer.files[0]); });
  view.append(drop);
}

// Search by face: a photo dropped or chosen (or an appearance's own face, from its page) against
// every stored appearance; a grid of results, best first, each opening its appearance.
async function search(view, fromDetection) {
  await Promise.all([loadPersons().catch(() => {}),
    call("GET", "/cameras").then((r) => (state.cameras = new Map(r.items.map((c) => [c.id, c.name])))).catch(() => {})]);
  const input = h("input", { id: "search-photo", type: "file", accept: "image/jpeg,image/png,image/webp" });
  const minScore = h("input", { id: "search-min", type: "number", min: "-1", max: "1", step: "0.05", value: "0.3" });
  const out = h("div", { id: "search-result", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More");
  const drop = h("section", { id: "search" }, h("h2", {}, "Search by face"),
    h("p", {}, "Drop a photo of one face here or choose one: the appearances most like it, on every camera, best first."),
    h("label", { for: "search-min" }, "Minimum score"), minScore,
    h("label", { for: "search-photo" }, "Photo"), input, out, more);
  let ask = null;
  const page = async (cursor) => {
    const p = new URLSearchParams({ limit: "24", min_score: minScore.value || "-1" });
    if (cursor) p.set("cursor", cursor);
    const r = await ask("?" + p.toString());
    const grid = cursor ? $(".results", out) : h("div", { class: "wall results" });
    if (!cursor) out.replaceChildren(r.hits.length ? grid : h("p", {}, "No stored appearance scores that high."));
    for (const hit of r.hits) {
      const img = h("img", { alt: "Face of " + personName(hit.person_id) });
      grid.append(h("div", { class: "tile", "data-detection": hit.detection_id },
        h("a", { href: "#/appearance/" + hit.detection_id },
          h("div", { class: "pic" }, hit.snapshot_url ? img : "no snapshot"),
          h("div", { class: "meta" }, h("strong", {}, personName(hit.person_id)), ` ${pct(hit.score)}`,
            h("div", { class: "muted" }, `${cameraName(hit.camera_id)} · ${when(hit.detected_at)}`)))));
      if (hit.snapshot_url) picture(`/detections/${hit.detection_id}/snapshot.jpg?kind=face`).then((u) => u && (img.src = u));
    }
    more.hidden = !r.next_cursor; more.dataset.cursor = r.next_cursor || "";
  };
  const run = async () => {
    out.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try { await page(null); } catch (e) { more.hidden = true; out.replaceChildren(h("p", { class: "error", role: "alert" }, explain(e))); }
  };
  const byPhoto = (file) => { ask = (q) => { const f = new FormData(); f.append("photo", file, file.name); return call("POST", "/search" + q, f); }; run(); };
  input.addEventListener("change", () => input.files[0] && byPhoto(input.files[0]));
  minScore.addEventListener("change", () => ask && run());
  more.addEventListener("click", () => page(more.dataset.cursor).catch((e) => out.append(h("p", { class: "error", role: "alert" }, explain(e)))));
  drop.addEventListener("dragover", (e) => e.preventDefault());
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) byPhoto(e.dataTransfer.files[0]); });
  view.append(drop);
  if (fromDetection) {
    drop.insertBefore(h("p", { id: "search-from" }, "Searching with the face of ", h("a", { href: "#/appearance/" + fromDetection }, "appearance " + fromDetection), "."), input.previousSibling);
    ask = (q) => call("POST", "/search" + q, { detection_id: Number(fromDetection) });
    run();
  }
}

async function admin(view) {
  const rows = h("tbody");
  const shown = h("div", { role: "status" });
  const form = h("form", { id: "new-key", "aria-label": "Create an API key" }, h("h2", {}, "Create an API key"),
    field("Name", "name", { required: true }),
    h("label", { for: "key-role" }, "Role"),
    h("select", { id: "key-role", name: "role" }, h("option", { value: "viewer" }, "viewer (reads)"), h("option", { value: "admin" }, "admin (everything)")),
    h("p", { class: "error form-error", role: "alert" }), h("button", { type: "submit" }, "Create key"), shown);
  const stats = h("pre", { id: "stats" });
  view.append(h("section", {}, h("h2", {}, "API keys"), h("table", {}, rows)), form, h("section", {}, h("h2", {}, "Engine"), stats));
  const refresh = async () => {
    const r = await call("GET", "/keys");
    rows.replaceChildren(...(r.items || r).map((k) => h("tr", {}, h("td", {}, k.name), h("td", {}, k.role), h("td", {}, when(k.created_at)),
      h("td", {}, h("button", { type: "button", class: "danger", "aria-label": "Revoke key " + k.name, onclick: async () => {
        if (confirm(`Revoke key ${k.name}?`)) { await call("DELETE", "/keys/" + k.id); refresh(); }
      } }, "Revoke")))));
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const k = await call("POST", "/keys", { name: form.elements.name.value, role: form.elements.role.value });
      shown.replaceChildren(h("p", {}, "Copy this key now; it is not shown again:"), h("p", { class: "secret" }, k.key));
      // The first key closes an open API: carry on with it if it may do everything, else sign in.
      if (state.open && !(await access()).open) {
        setOpen(false);
        if (k.role !== "admin") { signOut("The API needs a key now: sign in with one."); return; }
        state.key = k.key;
        sessionStorage.setItem("panoptes-key", k.key);
        listen();
      }
      refresh();
    } catch (e) { showFormError(form, e); }
  });
  every(5000, async () => { stats.textContent = JSON.stringify(await call("GET", "/admin/stats"), null, 2); });
  await refresh();
}

// ---- live alerts (Server-Sent Events read through fetch, so the key stays in a header) ---------

let alertStream = null;

async function listen() {
  if (alertStream) alertStream.abort();
  const abort = new AbortController();
  alertStream = abort;
  const status = $("#alerts-state");
  try {
    const res = await fetch(API + "/events", { headers: keyHeader(), signal: abort.signal });
    if (!res.ok) throw new Error("HTTP " + res.status);
    status.textContent = "Listening.";
    const reader = res.body.getReader();
    const text = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += text.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (block.includes("event: detection") && data) showAlert(JSON.parse(data));
      }
    }
  } catch (e) { if (abort.signal.aborted) return; status.textContent = "Disconnected (" + e.message + "); retrying…"; }
  if (!abort.signal.aborted) setTimeout(listen, 3000);
}

// An event: who, where, when; the alert rules it matched; for an unknown face grouped into an
// identity once its appearance ended ("grouped"), that identity and on how many days it was seen.
function showAlert(e) {
  const hit = e.person_id != null;
  const rules = Array.isArray(e.alerts) ? e.alerts.map((a) => a.name) : [];
  const name = e.person_name || (hit ? "person " + e.person_id : "unknown face");
  const grouped = e.stage === "grouped" && e.unknown_id != null;
  const li = h("li", { class: [hit ? "hit" : "", rules.length ? "alerted" : ""].join(" ").trim() }, h("strong", {}, name), " on " + cameraName(e.camera_id),
    h("div", { class: "muted" }, when(e.detected_at) + " · score " + pct(e.score)),
    grouped ? h("div", {}, h("a", { href: "#/unknown/" + e.unknown_id }, "unknown #" + e.unknown_id),
      e.unknown_days != null ? ` seen on ${e.unknown_days} day(s)` : "") : null,
    rules.length ? h("div", { class: "rule-names" }, (rules.length > 1 ? "Rules: " : "Rule: ") + rules.join(", ")) : null,
    e.id ? h("a", { href: "#/appearance/" + e.id }, "Open") : null);
  $("#alert-list").prepend(li);
  while ($("#alert-list").children.length > 100) $("#alert-list").lastChild.remove();
  if (!hit && !rules.length) return;
  if ($("#alert-sound").checked) beep();
  if ($("#alert-notify").checked && "Notification" in window && Notification.permission === "granted") {
    new Notification("Panoptes: " + (rules.length ? rules.join(", ") : name), { body: name + " on " + cameraName(e.camera_id) });
  }
}

function beep() {
  const ctx = new AudioContext();
  const o = ctx.createOscillator(); o.frequency.value = 880; o.connect(ctx.destination);
  o.start(); o.stop(ctx.currentTime + 0.2);
}

// ---- sign-in and routing -----------------------------------------------------------------------

// Whether this API needs a key ({open: true} when it has none); asks nothing else.
async function access() {
  const res = await fetch(API + "/access");
  if (!res.ok) throw new ApiError(res.status, "http_" + res.status, res.statusText);
  return res.json();
}

function setOpen(open) {
  state.open = open;
  $("#open-banner").hidden = !open;
  $("#signout").hidden = open; // nobody to sign out on an open API
}

async function signIn(key) {
  state.key = key;
  try {
    await call("GET", "/keys");
    state.admin = true;
  } catch (e) {
    if (e.status === 403) state.admin = false;
    else { state.key = ""; throw e; }
  }
  if (key) sessionStorage.setItem("panoptes-key", key);
  state.signedIn = true;
  call("GET", "/cameras").then((r) => (state.cameras = new Map(r.items.map((c) => [c.id, c.name])))).catch(() => {});
  document.body.classList.toggle("viewer", !state.admin);
  $("#signin").hidden = true; $("#nav").hidden = false; $("#alerts").hidden = false;
  document.querySelectorAll(".admin-only").forEach((el) => (el.hidden = !state.admin));
  listen();
  route();
}

function signOut(why) {
  sessionStorage.removeItem("panoptes-key");
  if (alertStream) alertStream.abort();
  state.key = ""; state.admin = false; state.signedIn = false;
  setOpen(false);
  clearView();
  $("#nav").hidden = true; $("#alerts").hidden = true; $("#signin").hidden = false;
  $("#alert-list").replaceChildren();
  $("#signin-error").textContent = typeof why === "string" ? why : "";
  $("#key").value = ""; $("#key").focus();
}

const ROUTES = {
  wall, cameras, people, appearances, review, unknowns, rules, identify, search, admin,
  camera: cameraPage, appearance, person: personPage, unknown: unknownPage,
};

async function route() {
  if (!state.signedIn) return;
  const [, name = "wall", arg] = location.hash.split("/");
  const view = clearView();
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.getAttribute("href") === "#/" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const show = ROUTES[name] || wall;
  try { await show(view, arg); } catch (e) { if (state.signedIn) view.append(h("p", { class: "error", role: "alert" }, explain(e))); }
  $("#main").focus();
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  $("#signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#signin-error").textContent = "";
    try { await signIn($("#key").value.trim()); } catch (e) {
      $("#signin-error").textContent = e.status === 401 ? "That key is not valid." : explain(e);
    }
  });
  $("#signout").addEventListener("click", signOut);
  // A click on the section already shown starts it afresh (forms emptied, lists re-read).
  $("#nav").addEventListener("click", (e) => {
    if (e.target.matches("a") && e.target.getAttribute("href") === location.hash) route();
  });
  $("#alert-notify").addEventListener("change", (e) => {
    if (e.target.checked && "Notification" in window) Notification.requestPermission();
  });
  // Open API: straight in. Otherwise the sign-in form alone, or the key this tab signed in with.
  access().then((a) => {
    if (a.open) { setOpen(true); return signIn(""); }
    if (state.key) return signIn(state.key);
    signOut();
  }).catch(() => signOut());
});
