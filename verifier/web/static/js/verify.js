// The verify page: paste, upload or scan; ask the service; show the verdict as a card.
//
// The service answers 200 with a verdict (VALID or what failed), 503 when the chain
// could not be read ("could not check": no verdict, never shown as invalid), and 4xx
// (problem+json) when the input is not a licence at all. Every reason is shown in the
// page's language from its code (reasons.js); a problem is shown as a sentence saying
// what to do, with the service's technical words folded away in a <details>.
//
// Offline (offline-ui.js): when the service cannot be reached (no network, the service
// down, or its chain unreachable: 502/503/504), or the user chose offline, the page
// verifies from the trust snapshot it keeps, and the card says as of which block and
// how old the snapshot is.

import { applyStatic, joinList, label, lang, onLangChange, setUpLanguage, t } from "./i18n.js";
import { el, loadCatalogue } from "./common.js";
import { checkReason, loadReasons, statusReasonText } from "./reasons.js";
import { decodeImageData, imageDataOfBlob, scanCamera } from "./scan.js";
import { asOfLine, hasSnapshot, offlineChosen, setUpOffline, verifyFromSnapshot } from "./offline-ui.js";

const GREEN = new Set(["VALID"]);
const AMBER = new Set(["SUSPENDED", "EXPIRED", "NOT_YET_VALID", "SUPERSEDED"]);
// Everything else (TAMPERED, NOT_ANCHORED, ISSUER_NOT_AUTHORISED, REVOKED, CANCELLED) is red.

const slot = document.getElementById("card-slot");
const announce = document.getElementById("announce");
const cameraStatus = document.getElementById("camera-status");
let shown = null; // what the card shows, kept so a language switch can redraw it
let catalogue = { types: [] };
let redrawOffline = () => {};

// ---------------------------------------------------------------- asking the service

/** Verify pasted or read text: a licence JSON or an EL2:/EL1: payload. */
async function verifyText(raw) {
  const text = raw.replace(/^\uFEFF/, "").trim();
  if (!text) {
    show({ kind: "unreadable", sentence: ["paste-empty"] });
    return;
  }
  if (offlineChosen() || navigator.onLine === false) {
    await verifyOffline(text);
    return;
  }
  // The document goes to the service as the holder's own text, not re-serialised, so
  // that nothing (a large chain id, a duplicate key) is changed on the way.
  const body = text.startsWith("{") ? `{"document":${text}}` : JSON.stringify({ qr: text });
  await ask(
    () =>
      fetch("v1/verifications", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body,
      }),
    text,
  );
}

/** Verify from the kept trust snapshot, with no call to the service. */
async function verifyOffline(text) {
  if (!hasSnapshot()) {
    show({ kind: "unchecked", sentence: ["offline-no-snapshot"] });
    return;
  }
  slot.setAttribute("aria-busy", "true");
  announce.textContent = t("checking");
  await loadReasons();
  try {
    const { verdict, offline } = await verifyFromSnapshot(text);
    show({ kind: "verdict", verdict, offline });
  } catch (exc) {
    const detail = String(exc?.message ?? exc);
    if (exc?.code === "type.unavailable" || exc?.code === "unsupported-hash-suite") {
      // The licence may be genuine: the snapshot lacks its type version, or this page
      // its hash suite. Could not check, never a verdict.
      const sentence = exc.code === "type.unavailable" ? "offline-type-unavailable" : "problem-suite";
      show({ kind: "unchecked", sentence: [sentence], detail });
      return;
    }
    // Not a licence (offline.js cannot read it): as the service's 4xx, no verdict.
    show({ kind: "unreadable", sentence: ["problem-document"], detail });
  } finally {
    slot.removeAttribute("aria-busy");
  }
}

/** Verify an image the browser could not read a QR code from: the service tries harder. */
async function verifyImage(file) {
  if (offlineChosen() || navigator.onLine === false) {
    show({ kind: "unreadable", sentence: ["problem-image"] });
    return;
  }
  const form = new FormData();
  form.append("image", file, file.name || "image");
  await ask(() => fetch("v1/verifications/image", { method: "POST", body: form }));
}

// The service's answers that mean it could not check (it, or its chain, is down).
const UNREACHABLE = new Set([502, 503, 504]);

/** Ask the service; `text` (when given) is verified from the snapshot if it cannot answer. */
async function ask(request, text = null) {
  slot.setAttribute("aria-busy", "true");
  announce.textContent = t("checking");
  let response;
  try {
    response = await request();
  } catch (exc) {
    slot.removeAttribute("aria-busy");
    if (text !== null && hasSnapshot()) {
      await verifyOffline(text);
      return;
    }
    // The service itself could not be reached: no verdict either.
    show({ kind: "unchecked", sentence: ["problem-unreachable"], detail: String(exc.message || exc) });
    return;
  }
  if (text !== null && UNREACHABLE.has(response.status) && hasSnapshot()) {
    slot.removeAttribute("aria-busy");
    await verifyOffline(text);
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  await loadReasons(); // the card's reasons are worded from it (a failure falls back to English)
  slot.removeAttribute("aria-busy");
  if (response.ok && body && body.status) {
    show({ kind: "verdict", verdict: body });
  } else {
    show(problemCard(body, response));
  }
}

// Payload reasons of an unreadable image (verifier/images.py); every other payload
// reason is a step of decoding the QR code's text (docs/format.md).
const IMAGE_REASONS = new Set(["no-qr", "image", "image-too-large"]);

/** The card for a problem answer: which card, the sentence to show, the folded detail. */
function problemCard(body, response) {
  const slug = typeof body?.type === "string" ? body.type.split("/").pop() : "";
  const status = response.status;
  const detail = technical(body, response);
  if (status >= 500) {
    return { kind: "unchecked", sentence: [status === 503 ? "unchecked-meaning" : "problem-internal"], detail };
  }
  if (slug === "rate-limited" || status === 429) {
    const wait = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
    return { kind: "unchecked", sentence: ["problem-rate", Number.isFinite(wait) && wait > 0 ? wait : 1], detail };
  }
  if (slug === "unauthenticated" || slug === "not-permitted" || status === 401 || status === 403) {
    return { kind: "unchecked", sentence: ["problem-denied"], detail };
  }
  if (slug === "unusable-licence" && body.reason === "unsupported-hash-suite") {
    // Not a broken licence: this verifier cannot compute its hashes, so no verdict.
    return { kind: "unchecked", sentence: ["problem-suite"], detail };
  }
  let sentence = "unreadable-meaning";
  if (slug === "unusable-licence" && IMAGE_REASONS.has(body.reason)) sentence = "problem-image";
  else if (slug === "unusable-licence" && body.reason) sentence = "problem-qr";
  else if (slug === "unusable-licence" || slug === "malformed-request" || slug === "invalid-request") {
    sentence = "problem-document";
  } else if (slug === "payload-too-large" || status === 413) sentence = "problem-too-large";
  else if (slug === "unsupported-media-type" || status === 415) sentence = "problem-media";
  return { kind: "unreadable", sentence: [sentence], detail };
}

/** The service's own words about a problem, for the folded technical detail. */
function technical(body, response) {
  const parts = [`HTTP ${response.status}`];
  if (body && typeof body.type === "string") parts.push(body.type.split("/").pop());
  if (body && typeof body.reason === "string") parts.push(`reason ${body.reason}`);
  if (body && typeof body.detail === "string") parts.push(body.detail);
  for (const error of Array.isArray(body?.errors) ? body.errors : []) {
    parts.push(`${error.path}: ${error.message}`);
  }
  return parts.join(" · ");
}

// ---------------------------------------------------------------- the card

function show(what) {
  shown = what;
  slot.replaceChildren(render(what));
  announce.textContent = summary(what);
  slot.scrollIntoView({ block: "start", behavior: "instant" });
}

function summary(what) {
  if (what.kind === "verdict") {
    const status = what.verdict.status;
    const base = `${t("result-h")}: ${t(`status-${status}`)}. ${t(`meaning-${status}`)}`;
    if (!what.offline) return base;
    const o = what.offline;
    return `${base} ${t("offline-asof", o.blockNumber, when(o.blockTime))}${o.stale ? ` ${t("offline-stale", o.maxAgeDays)}` : ""}`;
  }
  return `${t(`${what.kind}-title`)}. ${sentenceOf(what)}`;
}

/** The plain sentence of a card without a verdict, in the page's language. */
function sentenceOf(what) {
  const [key, ...values] = what.sentence ?? [`${what.kind}-meaning`];
  return t(key, ...values);
}

function render(what) {
  if (what.kind === "verdict") return verdictCard(what.verdict, what.offline);
  const tone = what.kind === "unchecked" ? "unknown" : "neutral";
  return el(
    "article",
    { class: `card card--${tone}`, "data-kind": what.kind, "aria-labelledby": "card-title" },
    el(
      "header",
      { class: "card__head" },
      el("span", { class: "card__icon", "aria-hidden": "true", text: what.kind === "unchecked" ? "?" : "!" }),
      el(
        "div",
        {},
        el("h3", { id: "card-title", class: "card__title", tabindex: "-1", text: t(`${what.kind}-title`) }),
        el("p", { class: "card__meaning", "data-sentence": (what.sentence ?? [])[0], text: sentenceOf(what) }),
      ),
    ),
    what.detail
      ? el(
          "details",
          { class: "card__detail" },
          el("summary", { text: t("technical-detail") }),
          el("p", { class: "card__reason" }, el("code", { lang: "en", text: what.detail })),
        )
      : null,
  );
}

function tone(status) {
  if (GREEN.has(status)) return "ok";
  if (AMBER.has(status)) return "warn";
  return "bad";
}

const ICON = { ok: "✓", warn: "!", bad: "✗" };

function verdictCard(v, offline = null) {
  const type = catalogue.types.find((x) => x.id === v.licenceType);
  const failed = (v.checks || []).find((c) => c.outcome === "failed");
  const cardTone = tone(v.status);
  return el(
    "article",
    {
      class: `card card--${cardTone}`,
      "data-kind": "verdict",
      "data-status": v.status,
      "data-source": offline ? "snapshot" : "service",
      "aria-labelledby": "card-title",
    },
    el(
      "header",
      { class: "card__head" },
      el("span", { class: "card__icon", "aria-hidden": "true", text: ICON[cardTone] }),
      el(
        "div",
        {},
        el(
          "h3",
          { id: "card-title", class: "card__title", tabindex: "-1" },
          t(`status-${v.status}`),
          el("span", { class: "card__code", lang: "en", text: v.status }),
        ),
        el("p", { class: "card__meaning", text: t(`meaning-${v.status}`) }),
      ),
    ),
    offline ? asOfLine(offline, when) : null,
    failed ? el("p", { class: "card__reason" }, el("strong", { text: `${t("reason")}: ` }), reasonOf(failed)) : null,
    facts([
      [t("status-reason"), statusReasonOf(v), "status-reason"],
      [t("successor"), v.successor && el("code", { text: v.successor }), "successor"],
      [t("licence-type"), type ? label(type.name) : v.licenceTypeName || v.licenceType, "licence-type"],
      [t("licence-id"), el("code", { text: v.licenceId }), "licence-id"],
    ]),
    fieldsSection(v, type),
    issuerSection(v.issuer),
    anchorSection(v.anchor),
    checksSection(v.checks || []),
    el(
      "footer",
      { class: "card__foot" },
      el(
        "p",
        {},
        `${t("checked-at")}: ${when(v.checkedAt)}`,
        v.blockHeight != null ? ` · ${t("block-height")}: ${v.blockHeight}` : "",
      ),
      el("button", { type: "button", class: "print-button", "data-action": "print", text: t("print") }),
    ),
  );
}

/** A definition list of [term, value, key] rows, skipping empty values. */
function facts(rows, className = "facts") {
  const list = el("dl", { class: className });
  for (const [term, value, key] of rows) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("div", { "data-fact": key }, el("dt", { text: term }), el("dd", {}, value)));
  }
  return list.childElementCount ? list : null;
}

function fieldsSection(v, type) {
  // A verdict from the snapshot (offline.js) lists no fields: say nothing rather than
  // "all disclosed".
  if (!v.fields) return null;
  const fields = v.fields || {};
  const hidden = new Set(v.hidden || []);
  const withheld = new Set(v.withheld || []);
  const specs = type ? type.fields : Object.keys(fields).map((name) => ({ name, label: { zh: name, en: name } }));
  const rows = [];
  for (const spec of specs) {
    let state = null;
    let value = null;
    if (spec.name in fields) {
      state = "disclosed";
      value = fields[spec.name];
    } else if (hidden.has(spec.name)) {
      state = "hidden";
      value = el("span", { class: "muted", text: t("field-hidden") });
    } else if (withheld.has(spec.name)) {
      state = "withheld";
      value = el("span", { class: "muted", text: t("field-withheld") });
    } else if (spec.absentMeans && v.status !== "TAMPERED") {
      state = "absent";
      value = label(spec.absentMeans);
    }
    if (!state) continue;
    rows.push(
      el(
        "tr",
        { "data-field": spec.name, "data-state": state },
        el("th", { scope: "row", text: label(spec.label) }),
        el("td", {}, value),
      ),
    );
  }
  const names = (set) => joinList([...set].map((n) => label(type?.fields.find((f) => f.name === n)?.label) || n));
  return el(
    "section",
    { class: "card__section", "aria-labelledby": "fields-h" },
    el("h4", { id: "fields-h", text: t("fields-h") }),
    untrusted(v) ? el("p", { class: "untrusted", text: t("fields-untrusted") }) : null,
    el("table", { class: untrusted(v) ? "fields fields--untrusted" : "fields" }, el("tbody", {}, rows)),
    el(
      "p",
      { class: "hidden-note", "data-hidden": [...hidden].join(",") },
      hidden.size ? t("hidden-summary", names(hidden)) : t("none-hidden"),
    ),
    withheld.size ? el("p", { class: "hidden-note", text: t("withheld-summary", names(withheld)) }) : null,
  );
}

/** True when what the card lists cannot be relied on: it is not what an authorised
 * agency anchored (as opposed to a licence that was genuine but is no longer in force). */
function untrusted(v) {
  return (v.checks || []).some(
    (c) => c.outcome === "failed" && ["integrity", "anchor", "issuer", "seal"].includes(c.name),
  );
}

function issuerSection(issuer) {
  if (!issuer) return null;
  return el(
    "section",
    { class: "card__section", "aria-labelledby": "issuer-h" },
    el("h4", { id: "issuer-h", text: t("issuer-h") }),
    facts([
      [t("issuer-name"), issuer.name, "issuer-name"],
      [t("issuer-code"), issuer.code, "issuer-code"],
      [t("issuer-agency"), issuer.agencyId, "issuer-agency"],
      [t("issuer-address"), issuer.address && el("code", { text: issuer.address }), "issuer-address"],
    ]),
  );
}

function anchorSection(anchor) {
  if (!anchor) return null;
  return el(
    "section",
    { class: "card__section", "aria-labelledby": "anchor-h" },
    el("h4", { id: "anchor-h", text: t("anchor-h") }),
    facts([
      [t("anchor-block"), anchor.blockNumber, "anchor-block"],
      [t("anchor-tx"), anchor.transaction && el("code", { text: anchor.transaction }), "anchor-tx"],
      [t("anchor-time"), anchor.time && when(anchor.time), "anchor-time"],
      [t("anchor-chain"), anchor.chainId, "anchor-chain"],
      [t("anchor-registry"), anchor.registry && el("code", { text: anchor.registry }), "anchor-registry"],
      [t("anchor-root"), anchor.root && el("code", { text: anchor.root }), "anchor-root"],
    ]),
  );
}

function checksSection(checks) {
  if (!checks.length) return null;
  return el(
    "section",
    { class: "card__section", "aria-labelledby": "checks-h" },
    el("h4", { id: "checks-h", text: t("checks-h") }),
    el(
      "ol",
      { class: "checks" },
      checks.map((c) =>
        el(
          "li",
          { class: `check check--${c.outcome}`, "data-check": c.name, "data-code": c.code },
          el("span", { class: "check__name", text: t(`check-${c.name}`) }),
          el("span", { class: "check__outcome", text: t(`outcome-${c.outcome}`) }),
          el("span", { class: "check__reason", text: reasonOf(c) }),
        ),
      ),
    ),
  );
}

function reasonOf(check) {
  return checkReason(check, { catalogue, time: when });
}

/** Why the licence is not in force, worded from the status check's reason code when the
 * answer has one (the API's `statusReason` is in Chinese). */
function statusReasonOf(v) {
  const check = (v.checks || []).find((c) => c.name === "status" && c.outcome === "failed");
  if (check && check.params && check.params.reason !== undefined) return statusReasonText(check.params.reason);
  return v.statusReason;
}

/** A time in China Standard Time, as the clerk's documents state times. */
function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const text = new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  }).format(date);
  return `${text} (${t("tz")})`;
}

// ---------------------------------------------------------------- the three ways in

function setUpPaste() {
  const form = document.getElementById("paste-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verifyText(document.getElementById("paste").value);
  });
  // Ctrl+Enter verifies from inside the text box (a scanner gun often types a newline).
  document.getElementById("paste").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

function isImage(file) {
  return /^image\//.test(file.type) || /\.(png|jpe?g)$/i.test(file.name);
}

function setUpUpload() {
  const input = document.getElementById("upload");
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    try {
      if (isImage(file)) {
        announce.textContent = t("reading-image");
        let text = null;
        try {
          text = decodeImageData(await imageDataOfBlob(file));
        } catch {
          text = null; // not decodable here: the service reads more kinds of picture
        }
        await (text ? verifyText(text) : verifyImage(file));
      } else {
        await verifyText(await file.text());
      }
    } finally {
      input.value = ""; // choosing the same file again verifies it again
    }
  });
}

function setUpCamera() {
  const start = document.getElementById("camera-start");
  const stopButton = document.getElementById("camera-stop");
  const video = document.getElementById("camera-video");
  let stop = null;
  const finish = () => {
    stop?.();
    stop = null;
    video.hidden = true;
    stopButton.hidden = true;
    start.hidden = false;
    start.focus();
  };
  start.addEventListener("click", async () => {
    if (!navigator.mediaDevices?.getUserMedia) {
      cameraStatus.textContent = t("camera-none");
      return;
    }
    try {
      video.hidden = false;
      stop = await scanCamera(video, (text) => {
        stop = null;
        finish();
        cameraStatus.textContent = "";
        verifyText(text);
      });
      start.hidden = true;
      stopButton.hidden = false;
      stopButton.focus();
      cameraStatus.textContent = t("camera-looking");
    } catch (exc) {
      video.hidden = true;
      // The browser's own message is in the browser's language: say it in the page's.
      const known = { NotAllowedError: "camera-denied", NotFoundError: "camera-missing" };
      cameraStatus.textContent = t(known[exc.name] ?? "camera-unavailable");
    }
  });
  stopButton.addEventListener("click", () => {
    finish();
    cameraStatus.textContent = "";
  });
}

slot.addEventListener("click", (event) => {
  if (event.target.closest("[data-action=print]")) window.print();
});

setUpLanguage();
onLangChange(() => {
  applyStatic();
  redrawOffline();
  if (shown) slot.replaceChildren(render(shown));
});
setUpPaste();
setUpUpload();
setUpCamera();
loadReasons();
loadCatalogue()
  .then((loaded) => {
    catalogue = loaded;
    if (shown) slot.replaceChildren(render(shown));
  })
  .catch(() => {
    // Without the catalogue the card still shows the fields, by their names.
  });
setUpOffline(when).then((redraw) => {
  redrawOffline = redraw;
});
document.body.dataset.ready = "true";
