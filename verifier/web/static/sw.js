// The service worker that makes the verify page an offline web app.
//
// It keeps the page's own files (the "shell") in one Cache Storage cache whose name
// carries VERSION, a digest of those files' bytes (tests/web/test_offline_page.py checks
// it and prints the right one when a file changed). Changing any shell file therefore
// changes this script, so the browser installs the new worker, which fills a new cache;
// on activation every other cache of ours is deleted, so an update replaces the old
// files at once and never mixes two versions.
//
// Answers of the API (v1/...) are not intercepted, so never cached: a verdict is true
// only as of its block and may hold fields a caller may see. The page keeps the trust
// anchor and the trust snapshot itself, in IndexedDB (js/offline-ui.js). One exception,
// KEPT: the catalogue of licence types (v1/catalogue), public and the same for everyone,
// which the page and offline.js need to show and check a licence; it is the service's,
// not a file of the page, so it is asked of the network first and the kept copy used only
// when the network fails.

const VERSION = "d13064402db7";
const PREFIX = "elicence-shell-";
const CACHE = PREFIX + VERSION;

// Relative to this script, so the app works under whatever path the service is mounted.
const SHELL = [
  "index.html",
  "present.html",
  "manifest.webmanifest",
  "css/app.css",
  "js/common.js",
  "js/elformat.js",
  "js/i18n.js",
  "js/offline-ui.js",
  "js/offline.js",
  "js/offline/document.js",
  "js/offline/payload.js",
  "js/present.js",
  "js/reasons.js",
  "js/scan.js",
  "js/verify.js",
  "vendor/jsqr/jsQR.js",
  "vendor/noble-hashes/_u64.js",
  "vendor/noble-hashes/sha3.js",
  "vendor/noble-hashes/utils.js",
  "vendor/noble-secp256k1/index.js",
  "vendor/pako/pako_deflate.umd.min.js",
  "vendor/pako/pako_inflate.umd.min.js",
  "vendor/qrcode-generator/qrcode.js",
  "vendor/sm-crypto/sm2.js",
  "vendor/sm-crypto/sm3.js",
  "reasons.json",
  "icons/icon-192.png",
  "icons/icon-512.png",
];

const KEPT = ["v1/catalogue"];

const scope = new URL(self.registration.scope);
const shellUrls = new Set(SHELL.map((path) => new URL(path, scope).href));
const keptUrls = new Set(KEPT.map((path) => new URL(path, scope).href));

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // "reload": fetch past the HTTP cache, so the new cache never holds an old file.
      const all = [...SHELL, ...KEPT];
      await cache.addAll(all.map((path) => new Request(new URL(path, scope), { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** The shell file a GET of `url` asks for, or null when it is not one. */
function shellKey(url) {
  const bare = url.origin + url.pathname; // ?lang=en and #anchors name the same file
  if (bare === scope.href) return new URL("index.html", scope).href;
  return shellUrls.has(bare) ? bare : null;
}

/** The network's answer, kept for when the network fails; the kept one then. */
async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    if (response.status < 500) return response;
    return (await cache.match(key)) ?? response; // the service up, its answer not
  } catch (exc) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw exc;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  const bare = url.origin + url.pathname;
  if (keptUrls.has(bare)) {
    event.respondWith(networkFirst(request, bare));
    return;
  }
  const key = shellKey(url);
  if (key === null) return; // the API and everything else: straight to the network
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(key);
      if (hit) return hit;
      // Evicted (storage pressure) or not yet installed: the network, kept for next time.
      const response = await fetch(request);
      if (response.ok) await cache.put(key, response.clone());
      return response;
    })(),
  );
});
