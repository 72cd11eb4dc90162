// What both pages share: the catalogue of licence types, and small DOM helpers.

let cataloguePromise = null;

/**
 * The catalogue of licence types (field order, labels, mandatory disclosure), as
 * { types: [...] }. It is the service's own (GET /v1/catalogue), so the page can never
 * lay out a payload by another field order than the service reads it by; the browser
 * keeps it and revalidates it by ETag (no-cache).
 */
export function loadCatalogue() {
  // Beside the page, wherever the service is mounted (verifier/service/routers/catalogue.py).
  const url = new URL("../v1/catalogue", import.meta.url).href;
  cataloguePromise ??= fetch(url, { cache: "no-cache" }).then(async (response) => {
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return { types: (await response.json()).licenceTypes };
  });
  return cataloguePromise;
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
