// The verify page's offline mode: the service worker, the pinned trust anchor, the trust
// snapshot (from a file or from the service), kept across reloads, and verification from
// it with offline.js when the service cannot be asked or the user chooses offline.
//
// Trust: the anchor (chain id, registry, governor address and SM2 key) is pinned from
// GET v1/trust-anchor the first time the page is opened online, and never replaced
// silently afterwards; every snapshot, from a file or from the service, is checked
// against it by offline.js's loadTrustSnapshot before it is used or kept. A snapshot
// kept in IndexedDB is checked again at every load: storage is not trusted either.

import { el, useSnapshotCatalogue } from "./common.js";
import { lang, t } from "./i18n.js";

const DB_NAME = "elicence-offline";
const STORE = "kept";
const MODE_KEY = "elicence.offline";
const MAX_AGE_KEY = "elicence.maxAgeDays";
export const DEFAULT_MAX_AGE_DAYS = 7; // as the CLI's --max-age (verifier/trust_snapshot.py)

const state = {
  anchor: null, // the pinned trust anchor
  snapshot: null, // offline.js's loaded snapshot
  source: null, // "file" or "service"
  bytes: null, // the snapshot's file, as kept
  problem: null, // [key, detail] of the last refusal, shown in the panel
};
let offlineModule = null;
let changed = () => {};

// ---------------------------------------------------------------- IndexedDB

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function kept(key) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const request = db.transaction(STORE).objectStore(STORE).get(key);
      request.onsuccess = () => resolve(request.result ?? null);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

async function keep(key, value) {
  const db = await openDb();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      tx.objectStore(STORE).put(value, key);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- settings

/** True when the user chose to verify from the snapshot only. */
export function offlineChosen() {
  try {
    return localStorage.getItem(MODE_KEY) === "on";
  } catch {
    return false;
  }
}

/** The age (days) after which a snapshot is shown as stale. */
export function maxAgeDays() {
  let value = NaN;
  try {
    value = Number.parseFloat(localStorage.getItem(MAX_AGE_KEY) ?? "");
  } catch {
    // storage off: the default
  }
  return Number.isFinite(value) && value >= 0 ? value : DEFAULT_MAX_AGE_DAYS;
}

// ---------------------------------------------------------------- the snapshot

async function offline() {
  // Imported on first use: the online page works even where the module cannot load.
  offlineModule ??= await import("./offline.js");
  return offlineModule;
}

/** The catalogue ({types}) of the snapshot kept in IndexedDB, checked again against the
 * pinned anchor, or null: for a page that has no snapshot loaded (the holder's page,
 * offline). */
export async function keptCatalogue() {
  try {
    const anchor = await kept("anchor");
    const saved = await kept("snapshot");
    if (!anchor || !saved) return null;
    // The co-signature's SM2 is a classic script the verify page loads and others not.
    if (!globalThis.sm2) await classicScript("vendor/sm-crypto/sm2.js");
    const { loadTrustSnapshot } = await offline();
    return (await loadTrustSnapshot(saved.bytes, anchor)).catalogue;
  } catch {
    return null;
  }
}

function classicScript(path) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = new URL(`../${path}`, import.meta.url).href;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${path} did not load`));
    document.head.append(script);
  });
}

/** True when a checked snapshot is loaded. */
export function hasSnapshot() {
  return state.snapshot !== null;
}

function bodyOf(snapshot) {
  return snapshot?.body ?? snapshot ?? {};
}

/** The block a snapshot is as of: {blockNumber, blockTime (Date)}. */
function asOfSnapshot(snapshot) {
  const body = bodyOf(snapshot);
  return {
    blockNumber: snapshot.blockNumber ?? body.blockNumber,
    blockTime: toDate(snapshot.blockTime ?? body.blockTime),
  };
}

function toDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === "number") return new Date(value * 1000); // unix seconds
  return new Date(value);
}

/** Check `bytes` against the pinned anchor; keep and use them when they pass. */
async function adopt(bytes, source, { onlyNewer = false } = {}) {
  if (!state.anchor) throw Object.assign(new Error("no pinned trust anchor"), { code: "no-anchor" });
  if (state.snapshot && sameBytes(bytes, state.bytes)) {
    state.problem = null; // the same file, checked already
    return false;
  }
  const { loadTrustSnapshot } = await offline();
  const snapshot = await loadTrustSnapshot(bytes, state.anchor);
  if (onlyNewer && state.snapshot) {
    const now = asOfSnapshot(state.snapshot).blockNumber;
    if (!(asOfSnapshot(snapshot).blockNumber > now)) return false;
  }
  state.snapshot = snapshot;
  state.bytes = bytes;
  state.source = source;
  state.problem = null;
  await keep("snapshot", { bytes, source, keptAt: new Date().toISOString() });
  return true;
}

function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function refused(exc) {
  const known = ["format", "signature", "unsigned", "definition", "other-registry", "no-anchor", "service-none"];
  const key = known.includes(exc?.code) ? `snapshot-refused-${exc.code}` : "snapshot-refused-other";
  state.problem = [key, String(exc?.message ?? exc)];
}

async function loadFromFile(file) {
  try {
    await adopt(new Uint8Array(await file.arrayBuffer()), "file");
  } catch (exc) {
    refused(exc);
  }
  changed();
}

async function fetchSnapshot() {
  const response = await fetch("v1/trust-snapshot", { cache: "no-cache" });
  if (response.status === 404) {
    throw Object.assign(new Error("HTTP 404: the service offers no trust snapshot"), { code: "service-none" });
  }
  if (!response.ok) throw new Error(`v1/trust-snapshot: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadFromService() {
  try {
    await pinAnchor();
    await adopt(await fetchSnapshot(), "service");
  } catch (exc) {
    // fetch() rejects with a TypeError when the service cannot be reached at all.
    if (exc instanceof TypeError && !exc.code) state.problem = ["snapshot-unreachable", String(exc.message)];
    else refused(exc);
  }
  changed();
}

/** Pin the service's trust anchor if none is pinned yet. */
async function pinAnchor() {
  if (state.anchor) return;
  const response = await fetch("v1/trust-anchor", { cache: "no-cache" });
  if (!response.ok) throw new Error(`v1/trust-anchor: HTTP ${response.status}`);
  const anchor = await response.json();
  if (!anchor || typeof anchor.registry !== "string" || typeof anchor.governor !== "string") {
    throw new Error("v1/trust-anchor: not a trust anchor");
  }
  state.anchor = anchor;
  await keep("anchor", anchor);
}

/** What the page verifies offline: the verdict, with the snapshot's block and age. */
export async function verifyFromSnapshot(text, now = new Date()) {
  const { verifyOffline, snapshotAge } = await offline();
  const verdict = await verifyOffline(text, state.snapshot, now);
  const ageSeconds = snapshotAge(state.snapshot, now);
  const limit = maxAgeDays();
  const asOf = verdict.asOf ?? asOfSnapshot(state.snapshot);
  return {
    verdict: { checkedAt: now.toISOString(), ...verdict, checks: (verdict.checks ?? []).map(asApiCheck) },
    offline: {
      blockNumber: asOf.blockNumber,
      blockTime: toDate(asOf.blockTime).toISOString(),
      ageSeconds,
      maxAgeDays: limit,
      stale: ageSeconds > limit * 86400,
    },
  };
}

/** A check of offline.js ({reason: {code, params}}) in the API's shape ({code, params,
 * reason: English words}), so that the card words both the same way (reasons.js). */
function asApiCheck(check) {
  if (!check.reason || typeof check.reason !== "object") return check;
  const { code = null, params = {} } = check.reason;
  return { ...check, code, params, reason: check.reason.text ?? code ?? "" };
}

// ---------------------------------------------------------------- words

/** An age in the page's language: hours below two days, days from then on (as the CLI). */
export function ageText(seconds) {
  const hours = Math.max(0, seconds) / 3600;
  const digits = (n) => n.toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", { maximumFractionDigits: 1 });
  return hours >= 48 ? t("age-days", digits(hours / 24)) : t("age-hours", digits(hours));
}

/** The "as of" line of an offline verdict card (amber when the snapshot is stale). */
export function asOfLine(facts, when) {
  return el(
    "div",
    {
      class: facts.stale ? "asof asof--stale" : "asof",
      "data-asof-block": facts.blockNumber,
      "data-stale": facts.stale ? "true" : "false",
    },
    el("p", { class: "asof__when", text: t("offline-asof", facts.blockNumber, when(facts.blockTime)) }),
    el("p", { class: "asof__age", "data-age-seconds": Math.round(facts.ageSeconds), text: t("offline-age", ageText(facts.ageSeconds)) }),
    facts.stale ? el("p", { class: "asof__stale", text: t("offline-stale", facts.maxAgeDays) }) : null,
  );
}

// ---------------------------------------------------------------- the panel

function renderPanel(when) {
  const status = document.getElementById("snapshot-status");
  const problem = document.getElementById("snapshot-problem");
  const anchorLine = document.getElementById("anchor-status");
  if (state.anchor) {
    anchorLine.textContent = t("anchor-pinned", state.anchor.registry, state.anchor.chainId);
  } else {
    anchorLine.textContent = t("anchor-none");
  }
  if (state.snapshot) {
    const asOf = asOfSnapshot(state.snapshot);
    const age = offlineModule.snapshotAge(state.snapshot, new Date());
    const stale = age > maxAgeDays() * 86400;
    status.dataset.block = String(asOf.blockNumber);
    status.dataset.stale = stale ? "true" : "false";
    status.className = stale ? "snapshot-status asof--stale" : "snapshot-status";
    status.textContent = t(
      state.source === "file" ? "snapshot-from-file" : "snapshot-from-service",
      asOf.blockNumber,
      when(asOf.blockTime.toISOString()),
      ageText(age),
    );
    if (stale) status.textContent += ` ${t("offline-stale", maxAgeDays())}`;
  } else {
    delete status.dataset.block;
    status.className = "snapshot-status";
    status.textContent = t("snapshot-none");
  }
  if (state.problem) {
    problem.hidden = false;
    problem.dataset.problem = state.problem[0];
    problem.replaceChildren(
      el("p", { text: t(state.problem[0]) }),
      el("details", {}, el("summary", { text: t("technical-detail") }), el("code", { lang: "en", text: state.problem[1] })),
    );
  } else {
    problem.hidden = true;
    problem.replaceChildren();
    delete problem.dataset.problem;
  }
}

async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("sw.js");
  } catch {
    // No offline app here (a private window, an insecure origin): the page still works.
  }
}

/**
 * Wire the offline panel: restore the pinned anchor and the kept snapshot, pin the
 * service's anchor on first use, refresh the snapshot from the service when it has a
 * newer one. `when(iso)` writes a time as the page does; the panel redraws through
 * the returned function (on a language switch).
 */
export async function setUpOffline(when) {
  // The page's catalogue, when the service cannot give it, is the snapshot's.
  let restoredDone;
  const restored = new Promise((resolve) => {
    restoredDone = resolve;
  });
  useSnapshotCatalogue(() => restored.then(() => state.snapshot?.catalogue ?? null));
  const redraw = () => renderPanel(when);
  changed = redraw;
  registerWorker();
  const modeBox = document.getElementById("offline-only");
  const ageBox = document.getElementById("max-age");
  modeBox.checked = offlineChosen();
  ageBox.value = String(maxAgeDays());
  modeBox.addEventListener("change", () => {
    try {
      localStorage.setItem(MODE_KEY, modeBox.checked ? "on" : "off");
    } catch {
      // not kept across reloads; still applies now
    }
  });
  ageBox.addEventListener("change", () => {
    const value = Number.parseFloat(ageBox.value);
    try {
      if (Number.isFinite(value) && value >= 0) localStorage.setItem(MAX_AGE_KEY, String(value));
    } catch {
      // not kept
    }
    redraw();
  });
  const fileInput = document.getElementById("snapshot-file");
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    if (file) await loadFromFile(file);
    fileInput.value = "";
  });
  document.getElementById("snapshot-fetch").addEventListener("click", () => loadFromService());

  try {
    state.anchor = await kept("anchor");
    const saved = await kept("snapshot");
    if (saved && state.anchor) {
      try {
        await adopt(saved.bytes, saved.source);
      } catch (exc) {
        refused(exc); // altered in storage, or offline.js refuses it now
      }
    }
  } catch {
    // IndexedDB unavailable: nothing kept, nothing to restore
  }
  restoredDone();
  try {
    await pinAnchor();
    // The newest trusted snapshot wins, wherever it came from.
    await adopt(await fetchSnapshot(), "service", { onlyNewer: true });
  } catch {
    // Offline, or the service has no snapshot: what is kept (if anything) stands.
  }
  if (state.snapshot) await offline(); // for snapshotAge in the panel
  redraw();
  document.body.dataset.offlineReady = "true";
  return redraw;
}
