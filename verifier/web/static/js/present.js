// The present page: open a licence file, tick what to disclose, show the QR code.
// Nothing is sent anywhere: the file is read, hashed and encoded in this page, and the
// only request it makes is for the licence types (the service's v1/catalogue).

import { applyStatic, joinList, label, onLangChange, setUpLanguage, t } from "./i18n.js";
import { el, loadCatalogue } from "./common.js";
import { encodePayload, FormatError, fieldStates, present, readLicence, toJsonText } from "./elformat.js";

// docs/format.md, "QR images": error correction M, a quiet zone of 4 modules, 6 px each.
const QUIET_ZONE = 4;
const MODULE_PX = 6;

const fileInput = document.getElementById("licence-file");
const openError = document.getElementById("open-error");
const choose = document.getElementById("choose");
const choiceList = document.getElementById("choice-list");
const out = document.getElementById("qr-out");
const canvas = document.getElementById("qr-canvas");
const payloadBox = document.getElementById("payload");

let licence = null;
let chosen = new Set(); // names of the optional fields ticked
let generation = 0; // ignores a slower, older encoding that finishes after a newer one
let last = null; // {disclosed, hidden} of the QR shown
const urls = [];

function showError(exc) {
  const key = exc instanceof FormatError ? exc.key : "err-read";
  openError.textContent = t(key) + (exc.detail ? ` (${exc.detail})` : "");
}

async function open(file) {
  openError.textContent = "";
  let catalogue;
  try {
    catalogue = await loadCatalogue();
  } catch {
    openError.textContent = t("err-catalogue");
    return;
  }
  try {
    licence = readLicence(await file.text(), catalogue);
  } catch (exc) {
    licence = null;
    choose.hidden = true;
    out.hidden = true;
    showError(exc);
    return;
  }
  // Personal data (e.g. the legal representative) starts hidden: a holder discloses
  // it only when a matter needs it (data minimisation, 可用不可见).
  chosen = new Set(
    fieldStates(licence)
      .filter((f) => f.state === "disclosed" && !f.mandatory && !f.spec.personal)
      .map((f) => f.spec.name),
  );
  drawChoices();
  choose.hidden = false;
  await generate();
}

function drawChoices() {
  const rows = [];
  for (const field of fieldStates(licence)) {
    if (field.state === "absent") continue;
    const id = `field-${field.spec.name}`;
    const fixed = field.mandatory || field.state === "hidden";
    const checked = field.state === "disclosed" && (field.mandatory || chosen.has(field.spec.name));
    const tags = [];
    if (field.mandatory) tags.push(el("span", { class: "tag", text: t("mandatory") }));
    if (field.state === "hidden") tags.push(el("span", { class: "tag", text: t("already-hidden") }));
    if (field.spec.personal) tags.push(el("span", { class: "tag", text: t("personal") }));
    const box = el("input", {
      type: "checkbox",
      id,
      value: field.spec.name,
      checked,
      disabled: fixed,
      "aria-describedby": `${id}-value`,
    });
    box.checked = checked;
    rows.push(
      el(
        "div",
        { class: "choice", "data-field": field.spec.name },
        box,
        el(
          "label",
          { for: id },
          el("span", { class: "choice__name" }, label(field.spec.label), tags),
          el("span", { class: "choice__value", id: `${id}-value` }, field.state === "disclosed" ? field.value : "••••••"),
        ),
      ),
    );
  }
  choiceList.replaceChildren(...rows);
  const type = licence.type;
  document.getElementById("licence-title").textContent =
    `${label(type.name)} · ${licence.fields.holderName ?? licence.fields.licenceNumber ?? ""}`;
}

choiceList.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.disabled) return;
  if (box.checked) chosen.add(box.value);
  else chosen.delete(box.value);
  generate();
});

function setAll(disclose) {
  if (!licence) return;
  chosen = new Set(
    disclose
      ? fieldStates(licence).filter((f) => f.state === "disclosed" && !f.mandatory).map((f) => f.spec.name)
      : [],
  );
  drawChoices();
  generate();
}

async function generate() {
  const mine = ++generation;
  let document_;
  let payload;
  try {
    document_ = await present(licence, [...chosen]);
    payload = encodePayload(document_, licence.type);
  } catch (exc) {
    if (mine !== generation) return;
    out.hidden = true;
    showError(exc);
    return;
  }
  if (mine !== generation) return;
  openError.textContent = "";
  drawQr(payload);
  payloadBox.value = payload;
  last = { disclosed: Object.keys(document_.fields), hidden: Object.keys(document_.hidden) };
  out.dataset.hidden = last.hidden.join(",");
  describe();
  setDownloads(document_);
  out.hidden = false;
}

function drawQr(payload) {
  // Exactly M, in alphanumeric mode (Base45 is the QR alphanumeric set); version chosen
  // by the library as the smallest that fits.
  const qr = qrcode(0, "M");
  qr.addData(payload, "Alphanumeric");
  qr.make();
  const modules = qr.getModuleCount();
  const size = (modules + 2 * QUIET_ZONE) * MODULE_PX;
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, size, size);
  context.fillStyle = "#000000";
  for (let row = 0; row < modules; row += 1) {
    for (let col = 0; col < modules; col += 1) {
      if (qr.isDark(row, col)) {
        context.fillRect((col + QUIET_ZONE) * MODULE_PX, (row + QUIET_ZONE) * MODULE_PX, MODULE_PX, MODULE_PX);
      }
    }
  }
  canvas.dataset.modules = String(modules);
}

function describe() {
  if (!last) return;
  const labelOf = (name) => label(licence.type.fields.find((f) => f.name === name).label);
  canvas.setAttribute("aria-label", t("qr-alt", last.disclosed.length));
  document.getElementById("qr-summary").textContent = t("qr-summary", last.disclosed.length, last.hidden.length);
  document.getElementById("qr-hidden").textContent = last.hidden.length
    ? t("qr-hidden-list", joinList(last.hidden.map(labelOf)))
    : "";
}

function setDownloads(document_) {
  // Blob URLs point into this page's memory: saving them writes a file on the device.
  while (urls.length) URL.revokeObjectURL(urls.pop());
  const json = new Blob([toJsonText(document_) + "\n"], { type: "application/json" });
  const jsonUrl = URL.createObjectURL(json);
  urls.push(jsonUrl);
  document.getElementById("save-json").href = jsonUrl;
  const png = document.getElementById("save-png");
  png.href = canvas.toDataURL("image/png");
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files && fileInput.files[0];
  if (file) open(file);
});
document.getElementById("disclose-all").addEventListener("click", () => setAll(true));
document.getElementById("disclose-minimum").addEventListener("click", () => setAll(false));

setUpLanguage();
onLangChange(() => {
  applyStatic();
  if (licence) {
    drawChoices();
    describe();
  }
});
loadCatalogue().catch(() => {
  openError.textContent = t("err-catalogue");
});
document.body.dataset.ready = "true";
