// What both pages share: the catalogue of licence types, and small DOM helpers.

let cataloguePromise = null;
// Set by offline-ui.js (the verify page): resolves to the loaded trust snapshot's {types},
// or null when no snapshot could be restored.
let snapshotCatalogue = null;

/**
 * The catalogue of licence types (field order, labels, mandatory disclosure), as
 * { types: [...] }. Online it is the service's own (GET /v1/catalogue, whose types the
 * service checks against the registry), so the page can never lay out a payload by
 * another field order than the service reads it by; the browser keeps it and
 * revalidates it by ETag (no-cache). When the service cannot be reached it is the loaded
 * trust snapshot's: the definitions the governor published, checked against their
 * hashes by offline.js. The page keeps no copy of its own.
 */
export function loadCatalogue() {
  // Beside the page, wherever the service is mounted (verifier/service/routers/catalogue.py).
  const url = new URL("../v1/catalogue", import.meta.url).href;
  cataloguePromise ??= fetch(url, { cache: "no-cache" })
    .then(async (response) => {
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      return { types: (await response.json()).licenceTypes };
    })
    .catch(async (exc) => {
      cataloguePromise = null; // asked again next time: the service may be back
      // The verify page gives its loaded snapshot's; another page reads the kept one.
      const source = snapshotCatalogue ?? (async () => (await import("./offline-ui.js")).keptCatalogue());
      const kept = await source();
      if (kept) return kept;
      throw exc;
    });
  return cataloguePromise;
}

/** Offline-ui.js gives a function that resolves to the loaded snapshot's catalogue
 * ({types} of its checked definitions) once a kept snapshot is restored, or null. */
export function useSnapshotCatalogue(source) {
  snapshotCatalogue = source;
}

/** An element with attributes and children (strings become text, never HTML). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
