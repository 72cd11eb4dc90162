// What both pages share: the catalogue of licence types, and small DOM helpers.

let cataloguePromise = null;

/**
 * The catalogue of licence types (field order, labels, mandatory disclosure). It is
 * the package's own licence/licence_types, copied at build time by scripts/vendor_web
 * and served beside the page, so presenting needs no call to the service.
 */
export function loadCatalogue() {
  cataloguePromise ??= fetch("catalogue.json", { cache: "no-cache" }).then((response) => {
    if (!response.ok) throw new Error(`catalogue.json: HTTP ${response.status}`);
    return response.json();
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
