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
// anchor and the trust snapshot itself, in IndexedDB (js/offline-ui.js). The catalogue
// of licence types is not kept either: offline, the page reads licences by the
// definitions in the trust snapshot, which the governor signed and offline.js checks
// against the registry's hashes, not by a copy of GET v1/catalogue.

const VERSION = "b85c621cf8ee";
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
  "js/payload-dictionary.js",
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

const scope = new URL(self.registration.scope);
const shellUrls = new Set(SHELL.map((path) => new URL(path, scope).href));

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // "reload": fetch past the HTTP cache, so the new cache never holds an old file.
      await cache.addAll(SHELL.map((path) => new Request(new URL(path, scope), { cache: "reload" })));
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

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
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
