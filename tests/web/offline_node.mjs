// Runs the verify page's offline verifier (verifier/web/static/js/offline.js) under Node
// with the globals the page gives it: WebCrypto (globalThis.crypto), the vendored
// sm-crypto SM3 and SM2 and pako's inflate half loaded as the page's classic <script>s,
// and fetch for what it reads beside the page (Node's fetch reads no file: URLs, so
// those are read from disk here). There is no GET v1/catalogue: offline, the licence
// types are the snapshot's own, and asking the service for them is an error here.
//
// Usage: node offline_node.mjs JOB.json  (tests/web/test_offline_verdicts.py writes it)
//   JOB = {"static": dir,
//          "snapshots": [{"name", "path", "anchor"}],
//          "cases": [{"name", "snapshot", "text", "now"}],
//          "sm2": [{"publicKey", "message", "signature"} (hex)]}
// Prints {"snapshots": {name: {"ok": true, "counts", ...} | {"refused": code, "message"}},
//         "verdicts": {name: verdict | {"error", "code"}}, "sm2": [bool]} as JSON.
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";
import path from "node:path";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const vendor = path.join(job.static, "vendor");
for (const file of ["sm-crypto/sm3.js", "sm-crypto/sm2.js", "pako/pako_inflate.umd.min.js"]) {
  vm.runInThisContext(readFileSync(path.join(vendor, file), "utf8"), { filename: file });
}
const networkFetch = globalThis.fetch;
globalThis.fetch = async (url, options) => {
  const target = new URL(String(url));
  if (target.protocol !== "file:") return networkFetch(url, options);
  if (target.pathname.includes("/v1/")) throw new TypeError(`offline: no service for ${target.pathname}`);
  return new Response(readFileSync(fileURLToPath(target)), { headers: { "content-type": "application/json" } });
};

const offline = await import(pathToFileURL(path.join(job.static, "js", "offline.js")).href);
const loaded = {};
const snapshots = {};
for (const item of job.snapshots) {
  try {
    const bytes = new Uint8Array(readFileSync(item.path));
    const started = performance.now();
    const cpu = process.cpuUsage();
    const snapshot = await offline.loadTrustSnapshot(bytes, item.anchor);
    const used = process.cpuUsage(cpu);
    loaded[item.name] = snapshot;
    snapshots[item.name] = {
      ok: true,
      counts: snapshot.counts,
      types: snapshot.catalogue.types.map((t) => `${t.id}@${t.version}`),
      unreadableTypes: Object.fromEntries(snapshot.unreadableTypes),
      blockNumber: snapshot.blockNumber,
      ageSeconds: offline.snapshotAge(snapshot, new Date(item.now ?? Date.now())),
      loadSeconds: (performance.now() - started) / 1000,
      // CPU time of this process (every thread: the gunzip runs beside the main one).
      cpuSeconds: (used.user + used.system) / 1e6,
      peakMiB: process.resourceUsage().maxRSS / 1024,
    };
  } catch (exc) {
    if (!(exc instanceof offline.SnapshotRefused)) throw exc;
    snapshots[item.name] = { refused: exc.code, message: exc.message };
  }
}
const verdicts = {};
for (const item of job.cases) {
  try {
    verdicts[item.name] = await offline.verifyOffline(item.text, loaded[item.snapshot], new Date(item.now));
  } catch (exc) {
    verdicts[item.name] = { error: exc.constructor.name, code: exc.code ?? null, message: exc.message };
  }
}
// The vendored SM2 itself, called as offline.js calls it (X || Y with the 04 prefix,
// r || s, SM3 with the default identifier), on given vectors.
const sm2 = (job.sm2 ?? []).map(({ publicKey, message, signature }) =>
  globalThis.sm2.doVerifySignature(Array.from(Buffer.from(message, "hex")), signature, "04" + publicKey, {
    der: false,
    hash: true,
    userId: "1234567812345678",
  }),
);
console.log(JSON.stringify({ snapshots, verdicts, sm2 }));
