// todo-operator's page: times in the reader's zone, the recurring form's live preview, and live
// updates. Everything works without it (forms post, times show in UTC); it only makes it nicer.
"use strict";

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function formatted(date, zone) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZone: zone,
  }).format(date);
}

function sameWallTime(date, zone) {
  const options = { hour: "2-digit", minute: "2-digit", day: "numeric", timeZone: zone };
  return new Intl.DateTimeFormat("en", options).format(date) ===
    new Intl.DateTimeFormat("en", { ...options, timeZone: browserZone }).format(date);
}

// A <time datetime> in the reader's zone; the series' zone beside it where the wall times differ.
function showTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const date = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    let text = formatted(date, browserZone);
    const zone = time.dataset.zone;
    if (zone && zone !== browserZone) {
      try {
        if (!sameWallTime(date, zone)) text += ` (${formatted(date, zone)} ${zone})`;
      } catch (error) { /* a zone this browser does not know: the reader's alone */ }
    }
    time.textContent = text;
    time.title = time.getAttribute("datetime");
  }
}

function localWallTime(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function fillZones(root) {
  for (const input of root.querySelectorAll("[data-browser-zone]")) input.value = browserZone;
  for (const input of root.querySelectorAll("[data-default-zone]")) if (!input.value) input.value = browserZone;
  for (const input of root.querySelectorAll("input[data-instant]")) {
    const instant = input.dataset.instant;
    if (!input.value && instant) input.value = localWallTime(new Date(instant));
  }
}

function csrfToken(form) {
  const field = form.querySelector("input[name=csrf_token]");
  return field ? field.value : "";
}

function showFieldErrors(form, errors) {
  for (const message of form.querySelectorAll("[data-error-for]")) {
    const name = message.dataset.errorFor;
    const text = errors[name];
    message.hidden = !text;
    message.textContent = text || "";
    const input = form.querySelector(`[name="${name}"]`);
    if (input && input.type !== "hidden") {
      if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }
  }
}

function seriesForm(form) {
  const every = form.querySelector("[name=every]");
  const preview = form.querySelector("#preview");
  const rule = form.querySelector("#preview-rule");
  const sync = () => {
    const mode = form.querySelector("[name=mode]:checked").value;
    for (const part of form.querySelectorAll("[data-mode]")) part.hidden = part.dataset.mode !== mode;
    for (const part of form.querySelectorAll("[data-for-every]")) {
      part.hidden = !part.dataset.forEvery.split(" ").includes(every.value);
    }
  };
  let timer = null;
  let asked = 0;
  const refresh = async () => {
    const number = ++asked;
    const body = new URLSearchParams(new FormData(form));
    const answer = await fetch(form.dataset.preview, {
      method: "POST", body, headers: { "X-CSRF-Token": csrfToken(form) }, credentials: "same-origin",
    });
    const result = await answer.json().catch(() => ({ errors: { "": "the preview failed" } }));
    if (number !== asked) return; // a newer preview is on its way
    preview.replaceChildren();
    if (!answer.ok || result.errors) {
      rule.textContent = result.errors && result.errors[""] ? result.errors[""] : "Fix the fields marked above to see a preview.";
      showFieldErrors(form, result.errors || {});
      return;
    }
    showFieldErrors(form, {});
    rule.textContent = `${result.rule} in ${result.timeZone}`;
    for (const instant of result.occurrences) {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.setAttribute("datetime", instant);
      time.dataset.zone = result.timeZone;
      time.textContent = instant;
      item.append(time);
      preview.append(item);
    }
    showTimes(preview);
  };
  const changed = () => {
    sync();
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 250);
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  sync();
  if (form.querySelector("[name=start]").value) changed();
}

// Live: the owner's task updates as server-sent events; each one reloads the view's live part.
function followUpdates() {
  const from = document.body.dataset.liveFrom;
  const view = document.querySelector("[data-live-view]");
  if (!from || !view || !window.EventSource) return;
  const status = document.getElementById("live-status");
  let timer = null;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = new URL(window.location.href);
      if (view.id === "task-list") url.searchParams.set("fragment", "1");
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!answer.ok) {
        status.textContent = answer.status === 404 ? "This was removed elsewhere." : "";
        return;
      }
      const html = await answer.text();
      if (view.id === "task-list") {
        view.innerHTML = html;
      } else {
        const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-view]");
        if (fresh) view.replaceChildren(...fresh.childNodes);
      }
      showTimes(view);
      view.dataset.updated = String(Date.now());
      status.textContent = "Updated just now.";
    }, 50);
  };
  const source = new EventSource(`/live?from=${encodeURIComponent(from)}`);
  source.addEventListener("update", reload);
  source.addEventListener("resync", reload);
  source.addEventListener("open", () => { document.body.dataset.live = "connected"; });
  source.addEventListener("error", () => { document.body.dataset.live = "reconnecting"; });
}

document.addEventListener("DOMContentLoaded", () => {
  showTimes(document);
  fillZones(document);
  const form = document.getElementById("series-form");
  if (form) seriesForm(form);
  followUpdates();
});
