// The two languages of the pages: Chinese by default, English by the switch.
// Static text carries data-i18n="key" (its text) or data-i18n-attr="attr:key;..." (its
// attributes); scripts call t(key, ...values). The choice is kept in localStorage and
// can be forced with ?lang=en or ?lang=zh.

const dictionary = {
  zh: {
    "brand": "电子证照",
    "skip": "跳到主要内容",
    "nav": "页面",
    "nav-verify": "核验证照",
    "nav-present": "出示证照",
    "switch-label": "Switch to English",
    "switch-text": "English",
    "verify-title": "电子证照核验",
    "verify-h1": "核验电子证照",
    "verify-lead": "粘贴、上传或扫描持证人出示的二维码，查看证照是否真实有效。核验结果以区块链上的存证为准。",
    "paste-h": "粘贴",
    "paste-label": "二维码内容（以 EL2: 或 EL1: 开头）或证照 JSON",
    "paste-hint": "例如扫码枪录入的内容，或证照文件的全部文字。",
    "paste-submit": "核验",
    "paste-empty": "请先粘贴二维码内容或证照 JSON。",
    "upload-h": "上传",
    "upload-label": "二维码图片、照片或证照文件",
    "upload-hint": "支持 PNG、JPEG 图片和 JSON 文件。",
    "camera-h": "扫码",
    "camera-start": "打开摄像头扫码",
    "camera-stop": "停止扫码",
    "camera-hint": "将二维码置于画面中央，识别后自动核验。",
    "camera-looking": "正在识别二维码……",
    "camera-unavailable": "无法使用摄像头，请改用上传或粘贴。",
    "camera-denied": "未获准使用摄像头：请在浏览器中允许此页面使用摄像头，或改用上传或粘贴。",
    "camera-missing": "没有找到摄像头，请改用上传或粘贴。",
    "camera-none": "此浏览器不支持摄像头，请改用上传或粘贴。",
    "camera-video": "摄像头画面",
    "reading-image": "正在识别图片中的二维码……",
    "checking": "正在核验……",
    "result-h": "核验结果",
    "result-empty": "尚未核验。",
    "status-VALID": "有效",
    "status-TAMPERED": "已被篡改",
    "status-NOT_ANCHORED": "未经上链存证",
    "status-ISSUER_NOT_AUTHORISED": "发证机关未获授权",
    "status-REVOKED": "已吊销",
    "status-CANCELLED": "已注销",
    "status-SUPERSEDED": "已被换发",
    "status-SUSPENDED": "已暂扣",
    "status-EXPIRED": "已过期",
    "status-NOT_YET_VALID": "尚未生效",
    "meaning-VALID": "证照真实，由有权机关签发，现行有效。",
    "meaning-TAMPERED": "证照内容与签发时不一致，不得采信。",
    "meaning-NOT_ANCHORED": "未在受信任的登记合约中找到此证照的存证，不得采信。",
    "meaning-ISSUER_NOT_AUTHORISED": "签发机构无权签发此类证照，不得采信。",
    "meaning-REVOKED": "证照已被发证机关吊销，不再有效。",
    "meaning-CANCELLED": "证照已被注销，不再有效。",
    "meaning-SUPERSEDED": "证照已被新证照替代，请持证人出示新证照。",
    "meaning-SUSPENDED": "证照已被暂扣，暂停期间不能使用。",
    "meaning-EXPIRED": "证照已超过有效期。",
    "meaning-NOT_YET_VALID": "证照尚未到生效日期。",
    "unchecked-title": "无法核验",
    "unchecked-meaning": "暂时无法读取区块链，未能完成核验。这不代表证照无效，请稍后重试。",
    "unreadable-title": "无法读取",
    "unreadable-meaning": "输入的内容不是可识别的电子证照，请检查后重试。",
    "reason": "原因",
    "status-reason": "状态变更原因",
    "successor": "新证照标识",
    "licence-type": "证照类型",
    "licence-id": "证照标识",
    "fields-h": "证照信息",
    "fields-untrusted": "以下是出示的内容，未通过核验，不得采信。",
    "field-hidden": "持证人未公开",
    "field-withheld": "未向本终端提供",
    "hidden-summary": "持证人未公开的信息：{0}",
    "withheld-summary": "因涉及个人信息未提供：{0}",
    "none-hidden": "持证人公开了全部信息。",
    "issuer-h": "发证机关",
    "issuer-name": "名称",
    "issuer-code": "统一社会信用代码",
    "issuer-agency": "机构编号",
    "issuer-address": "签名账户",
    "anchor-h": "上链存证",
    "anchor-block": "区块",
    "anchor-tx": "交易",
    "anchor-time": "上链时间",
    "anchor-chain": "链 ID",
    "anchor-registry": "登记合约",
    "anchor-root": "批次根",
    "checks-h": "核验项目",
    "check-integrity": "内容完整",
    "check-anchor": "上链存证",
    "check-issuer": "发证机关授权",
    "check-seal": "机关印章（SM2）",
    "check-status": "证照状态",
    "check-validity": "有效期",
    "outcome-passed": "通过",
    "outcome-failed": "未通过",
    "outcome-skipped": "未检查",
    "checked-at": "核验时间",
    "block-height": "区块高度",
    "print": "打印核验结果",
    "problem": "详情",
    "technical-detail": "技术详情（供技术人员排查）",
    "problem-suite": "这份证照使用的哈希算法本核验服务不支持，无法在此核验；这并不说明证照是伪造的。请到支持该算法的核验服务核验。",
    "problem-qr": "无法读取这个二维码。请重新扫描；如果仍然无法读取，请持证人重新生成二维码后再出示。",
    "problem-image": "图片中没有找到可以读取的二维码。请拍得更清楚、让二维码占满画面后重新上传，或改用扫码、粘贴。",
    "problem-document": "这不是一份可以读取的电子证照文件。请持证人重新提供发证机关出具的证照文件或二维码。",
    "problem-too-large": "内容太大，不是一份电子证照。请检查选择的文件是否正确。",
    "problem-media": "不支持这种文件。请上传 PNG 或 JPEG 图片，或证照 JSON 文件。",
    "problem-rate": "核验请求过于频繁，请在 {0} 秒后重试。",
    "problem-denied": "本终端无权核验此类证照，请联系核验系统的管理员。",
    "problem-internal": "核验服务出现故障，未能完成核验。这不代表证照无效，请稍后重试；如果一再出现，请联系核验系统的管理员。",
    "problem-unreachable": "无法连接核验服务，未能完成核验。这不代表证照无效，请检查网络后重试。",
    "offline-h": "离线核验",
    "offline-hint": "无法连接核验服务时，依据受信任的快照在本机核验。快照须由登记合约的管理人签名。",
    "snapshot-fetch": "从核验服务获取快照",
    "snapshot-file": "从文件载入快照",
    "offline-only": "只用快照核验（不连接核验服务）",
    "max-age": "快照超过多少天提示过旧",
    "anchor-pinned": "受信任的登记合约：{0}（链 {1}）",
    "anchor-none": "尚未记录受信任的登记合约：请先在联网时打开本页。",
    "snapshot-none": "尚未载入快照。",
    "snapshot-from-service": "快照（来自核验服务）：截至区块 {0}，{1}；已有 {2}。",
    "snapshot-from-file": "快照（来自文件）：截至区块 {0}，{1}；已有 {2}。",
    "snapshot-refused-format": "快照被拒绝：文件不是可识别的信任快照。",
    "snapshot-refused-signature": "快照被拒绝：签名无效，或内容在签名后被改动。",
    "snapshot-refused-unsigned": "快照被拒绝：缺少登记合约管理人的国密签名。",
    "snapshot-refused-definition": "快照被拒绝：其中的证照类型定义与所记录的哈希不符。",
    "snapshot-refused-other-registry": "快照被拒绝：它属于另一个登记合约或另一条链，不是本页信任的登记合约。",
    "snapshot-refused-no-anchor": "快照被拒绝：本页尚未记录受信任的登记合约，请先在联网时打开本页。",
    "snapshot-refused-service-none": "核验服务没有提供快照，请改用快照文件。",
    "snapshot-refused-other": "快照被拒绝，未能使用。",
    "snapshot-unreachable": "无法连接核验服务，未能获取快照。原有快照（如有）仍可使用。",
    "offline-asof": "离线核验：截至区块 {0}，{1}。",
    "offline-age": "所用快照已有 {0}。",
    "offline-stale": "快照已超过 {0} 天，此后的状态变更（如吊销）未能反映，请更新快照。",
    "offline-no-snapshot": "无法连接核验服务，本机也没有快照，未能完成核验。这不代表证照无效，请联网后重试或载入快照。",
    "offline-type-unavailable": "所用快照中没有这份证照所属证照类型的这一版本，无法离线核验；这并不说明证照是伪造的。请载入更新的快照或联网核验。",
    "age-days": "{0} 天",
    "age-hours": "{0} 小时",
    "tz": "北京时间",
    "present-title": "出示电子证照",
    "present-h1": "出示电子证照",
    "present-lead": "打开证照文件，选择要公开的信息，生成二维码给办事窗口扫描。证照文件只在本设备上处理，不会上传。",
    "open-h": "打开证照",
    "open-label": "证照文件（JSON）",
    "open-hint": "发证机关提供的证照文件，或之前保存的出示文件。",
    "choose-h": "选择公开的信息",
    "choose-legend": "勾选要公开的信息，未勾选的将被隐藏",
    "mandatory": "必须公开",
    "already-hidden": "已隐藏，无法再公开",
    "personal": "个人信息",
    "all": "全部公开",
    "minimum": "只公开必须项",
    "qr-h": "出示此二维码",
    "qr-alt": "电子证照二维码：公开 {0} 项信息",
    "qr-summary": "公开 {0} 项，隐藏 {1} 项。",
    "qr-hidden-list": "隐藏：{0}",
    "payload-label": "二维码内容",
    "save-json": "保存出示文件",
    "save-png": "保存二维码图片",
    "err-json": "不是有效的 JSON 文件。",
    "err-format": "不是电子证照文件（format 应为 elicence/1）。",
    "err-suite": "不支持的哈希算法。",
    "err-type": "证照目录中没有此证照类型。",
    "err-member": "证照文件的内容不完整或有误。",
    "err-reveal": "此字段已被隐藏，无法再公开。",
    "err-too-long": "内容太多，放不进一个二维码，请少公开一些信息。",
    "err-read": "无法读取文件。",
    "err-catalogue": "无法加载证照目录。",
    "list-sep": "、",
  },
  en: {
    "brand": "e-Licence",
    "skip": "Skip to main content",
    "nav": "Pages",
    "nav-verify": "Verify",
    "nav-present": "Present",
    "switch-label": "切换到中文",
    "switch-text": "中文",
    "verify-title": "Verify an electronic licence",
    "verify-h1": "Verify an electronic licence",
    "verify-lead": "Paste, upload or scan the QR code a holder shows to see whether the licence is genuine and in force. The verdict rests on the licence's anchor on the blockchain.",
    "paste-h": "Paste",
    "paste-label": "QR code text (starting with EL2: or EL1:) or licence JSON",
    "paste-hint": "For example what a barcode scanner typed, or the whole text of a licence file.",
    "paste-submit": "Verify",
    "paste-empty": "Paste a QR code text or a licence JSON first.",
    "upload-h": "Upload",
    "upload-label": "QR code image, photo or licence file",
    "upload-hint": "PNG and JPEG images, and JSON files.",
    "camera-h": "Scan",
    "camera-start": "Scan with the camera",
    "camera-stop": "Stop scanning",
    "camera-hint": "Hold the QR code in the middle of the picture; it is verified as soon as it is read.",
    "camera-looking": "Looking for a QR code…",
    "camera-unavailable": "The camera cannot be used; upload or paste instead.",
    "camera-denied": "The camera was not allowed: let this page use the camera in the browser, or upload or paste instead.",
    "camera-missing": "No camera was found; upload or paste instead.",
    "camera-none": "This browser has no camera access; upload or paste instead.",
    "camera-video": "Camera picture",
    "reading-image": "Reading the QR code in the image…",
    "checking": "Checking…",
    "result-h": "Verdict",
    "result-empty": "Nothing verified yet.",
    "status-VALID": "Valid",
    "status-TAMPERED": "Tampered",
    "status-NOT_ANCHORED": "Not anchored",
    "status-ISSUER_NOT_AUTHORISED": "Issuer not authorised",
    "status-REVOKED": "Revoked",
    "status-CANCELLED": "Cancelled",
    "status-SUPERSEDED": "Superseded",
    "status-SUSPENDED": "Suspended",
    "status-EXPIRED": "Expired",
    "status-NOT_YET_VALID": "Not yet valid",
    "meaning-VALID": "Genuine, issued by an authorised agency, and in force.",
    "meaning-TAMPERED": "The content differs from what was issued: do not rely on it.",
    "meaning-NOT_ANCHORED": "The trusted registry holds no anchor for this licence: do not rely on it.",
    "meaning-ISSUER_NOT_AUTHORISED": "The issuer may not issue this kind of licence: do not rely on it.",
    "meaning-REVOKED": "The issuing agency revoked this licence; it is no longer valid.",
    "meaning-CANCELLED": "This licence was cancelled; it is no longer valid.",
    "meaning-SUPERSEDED": "A new licence replaced this one; ask the holder for the new one.",
    "meaning-SUSPENDED": "This licence is suspended and cannot be used meanwhile.",
    "meaning-EXPIRED": "This licence has expired.",
    "meaning-NOT_YET_VALID": "This licence is not yet in force.",
    "unchecked-title": "Could not check",
    "unchecked-meaning": "The blockchain could not be read, so no verdict was reached. This does not mean the licence is invalid: try again shortly.",
    "unreadable-title": "Could not read",
    "unreadable-meaning": "The input is not a recognisable electronic licence; check it and try again.",
    "reason": "Reason",
    "status-reason": "Reason for the change",
    "successor": "New licence id",
    "licence-type": "Licence type",
    "licence-id": "Licence id",
    "fields-h": "What the licence says",
    "fields-untrusted": "What was presented, below, failed verification: do not rely on it.",
    "field-hidden": "Not disclosed by the holder",
    "field-withheld": "Not provided to this terminal",
    "hidden-summary": "Not disclosed by the holder: {0}",
    "withheld-summary": "Withheld as personal data: {0}",
    "none-hidden": "The holder disclosed every field.",
    "issuer-h": "Issuing agency",
    "issuer-name": "Name",
    "issuer-code": "Unified social credit code",
    "issuer-agency": "Agency number",
    "issuer-address": "Signing account",
    "anchor-h": "Anchor on the blockchain",
    "anchor-block": "Block",
    "anchor-tx": "Transaction",
    "anchor-time": "Anchored at",
    "anchor-chain": "Chain id",
    "anchor-registry": "Registry contract",
    "anchor-root": "Batch root",
    "checks-h": "Checks",
    "check-integrity": "Integrity",
    "check-anchor": "Anchor",
    "check-issuer": "Issuer authorised",
    "check-seal": "Agency seal (SM2)",
    "check-status": "Status",
    "check-validity": "Validity period",
    "outcome-passed": "passed",
    "outcome-failed": "failed",
    "outcome-skipped": "not checked",
    "checked-at": "Checked at",
    "block-height": "Block height",
    "print": "Print the verdict",
    "problem": "Details",
    "technical-detail": "Technical details (for support staff)",
    "problem-suite": "This licence uses a hash suite this verifier does not support, so it cannot be checked here; that does not mean it is forged. Verify it where that suite is supported.",
    "problem-qr": "This QR code cannot be read. Scan it again; if it still cannot be read, ask the holder to make a new QR code and show that.",
    "problem-image": "No readable QR code was found in the picture. Take a sharper picture with the QR code filling it and upload it again, or scan or paste instead.",
    "problem-document": "This is not an electronic licence file that can be read. Ask the holder for the licence file or QR code the issuing agency provided.",
    "problem-too-large": "This is too large to be an electronic licence. Check that the right file was chosen.",
    "problem-media": "This kind of file is not supported. Upload a PNG or JPEG picture, or a licence JSON file.",
    "problem-rate": "Too many verifications at once: try again in {0} s.",
    "problem-denied": "This terminal may not verify this kind of licence; ask the administrator of the verification system.",
    "problem-internal": "The verification service failed, so no verdict was reached. This does not mean the licence is invalid: try again shortly, and tell the administrator if it keeps happening.",
    "problem-unreachable": "The verification service could not be reached, so no verdict was reached. This does not mean the licence is invalid: check the network and try again.",
    "offline-h": "Offline verification",
    "offline-hint": "When the verification service cannot be reached, licences are verified on this device from a trusted snapshot, signed by the registry's governor.",
    "snapshot-fetch": "Get a snapshot from the service",
    "snapshot-file": "Load a snapshot file",
    "offline-only": "Verify from the snapshot only (never ask the service)",
    "max-age": "Warn when the snapshot is older than (days)",
    "anchor-pinned": "Trusted registry: {0} (chain {1})",
    "anchor-none": "No trusted registry recorded yet: open this page once while online.",
    "snapshot-none": "No snapshot loaded.",
    "snapshot-from-service": "Snapshot (from the service): as of block {0}, {1}; {2} old.",
    "snapshot-from-file": "Snapshot (from a file): as of block {0}, {1}; {2} old.",
    "snapshot-refused-format": "Snapshot refused: the file is not a trust snapshot.",
    "snapshot-refused-signature": "Snapshot refused: its signature does not verify, or its content was changed after signing.",
    "snapshot-refused-unsigned": "Snapshot refused: the governor's SM2 signature is missing.",
    "snapshot-refused-definition": "Snapshot refused: a licence type definition in it does not match its recorded hash.",
    "snapshot-refused-other-registry": "Snapshot refused: it is of another registry or chain, not the one this page trusts.",
    "snapshot-refused-no-anchor": "Snapshot refused: this page has no trusted registry recorded yet; open it once while online.",
    "snapshot-refused-service-none": "The verification service offers no snapshot: load a snapshot file instead.",
    "snapshot-refused-other": "Snapshot refused: it could not be used.",
    "snapshot-unreachable": "The verification service could not be reached, so no snapshot was fetched. The snapshot kept here (if any) still applies.",
    "offline-asof": "Checked offline: as of block {0}, {1}.",
    "offline-age": "The snapshot used is {0} old.",
    "offline-stale": "The snapshot is older than {0} days: a status changed since (a revocation) is not shown. Load a newer one.",
    "offline-no-snapshot": "The verification service could not be reached and this device has no snapshot, so no verdict was reached. This does not mean the licence is invalid: go online or load a snapshot.",
    "offline-type-unavailable": "The snapshot used does not hold this version of the licence's type, so it cannot be checked offline; that does not mean it is forged. Load a newer snapshot or verify online.",
    "age-days": "{0} days",
    "age-hours": "{0} hours",
    "tz": "China Standard Time",
    "present-title": "Present an electronic licence",
    "present-h1": "Present an electronic licence",
    "present-lead": "Open your licence file, choose what to disclose, and show the QR code at the counter. The file is processed on this device only; it is never uploaded.",
    "open-h": "Open a licence",
    "open-label": "Licence file (JSON)",
    "open-hint": "The licence file from the issuing agency, or a presentation you saved before.",
    "choose-h": "Choose what to disclose",
    "choose-legend": "Tick what to disclose; anything not ticked is hidden",
    "mandatory": "always disclosed",
    "already-hidden": "hidden; cannot be disclosed again",
    "personal": "personal data",
    "all": "Disclose everything",
    "minimum": "Disclose only what is required",
    "qr-h": "Show this QR code",
    "qr-alt": "Electronic licence QR code disclosing {0} fields",
    "qr-summary": "{0} disclosed, {1} hidden.",
    "qr-hidden-list": "Hidden: {0}",
    "payload-label": "QR code text",
    "save-json": "Save the presentation file",
    "save-png": "Save the QR code image",
    "err-json": "Not a valid JSON file.",
    "err-format": "Not an electronic licence file (format must be elicence/1).",
    "err-suite": "Unsupported hash suite.",
    "err-type": "The catalogue has no such licence type.",
    "err-member": "The licence file is incomplete or malformed.",
    "err-reveal": "That field is hidden and cannot be disclosed again.",
    "err-too-long": "Too much to fit one QR code: disclose fewer fields.",
    "err-read": "The file could not be read.",
    "err-catalogue": "The licence catalogue could not be loaded.",
    "list-sep": ", ",
  },
};

const STORE = "elicence.lang";
const listeners = [];
let current = initialLanguage();

function initialLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "zh") return asked;
  try {
    const kept = localStorage.getItem(STORE);
    if (kept === "en" || kept === "zh") return kept;
  } catch {
    // storage may be off (private windows); Chinese is the default then
  }
  return "zh";
}

/** The current language: "zh" or "en". */
export function lang() {
  return current;
}

/** The text of `key` in the current language, with {0}, {1}, ... filled in. */
export function t(key, ...values) {
  const text = dictionary[current][key] ?? dictionary.zh[key] ?? key;
  return text.replace(/\{(\d)\}/g, (_, i) => String(values[Number(i)]));
}

/** A catalogue label ({zh, en}) in the current language. */
export function label(pair) {
  return pair ? pair[current] ?? pair.zh : "";
}

/** Fill every data-i18n element under `root` and set the page's lang attribute. */
export function applyStatic(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      node.setAttribute(attr, t(key));
    }
  }
  const toggle = document.getElementById("lang");
  if (toggle) {
    // The button names the other language in that language, so it says what it does.
    toggle.lang = current === "zh" ? "en" : "zh-CN";
  }
}

/** Switch language, redraw static text, and tell the page (to redraw what it built). */
export function setLang(next) {
  current = next;
  try {
    localStorage.setItem(STORE, next);
  } catch {
    // not kept; the switch still works for this page
  }
  applyStatic();
  for (const listener of listeners) listener(next);
}

export function onLangChange(listener) {
  listeners.push(listener);
}

/** Wire the switch button and fill the page's text once. */
export function setUpLanguage() {
  applyStatic();
  const toggle = document.getElementById("lang");
  toggle?.addEventListener("click", () => setLang(current === "zh" ? "en" : "zh"));
}

/** The list of labels joined the way the language joins them. */
export function joinList(items) {
  return items.join(t("list-sep"));
}
