// The operator page: asks for an operator key, reads /v1/operator/series with it every
// 10 s and draws each series as an SVG line chart. Chinese by default, English by the
// switch (the same choice as the verify page: localStorage "elicence.lang", ?lang=en).

const REFRESH_MS = 10_000;
const KEY_STORE = "elicence.operatorKey"; // sessionStorage: gone when the tab closes
const LANG_STORE = "elicence.lang";
const SVG = "http://www.w3.org/2000/svg";
const W = 600;
const H = 220;
const PAD = { left: 64, right: 12, top: 12, bottom: 34 };

const text = {
  zh: {
    "title": "电子证照核验服务 · 运维",
    "brand": "电子证照 · 运维",
    "h1": "核验服务运行情况（最近一小时）",
    "key-label": "运维密钥",
    "key-hint": "由 elicence apikey create --operator 生成。密钥只保存在本标签页中。",
    "key-submit": "查看",
    "key-forget": "清除密钥",
    "switch": "English",
    "h-verdicts": "每秒核验次数（按结论）",
    "h-latency": "核验响应时间（毫秒，分位数）",
    "h-rejected": "每秒被拒请求（按原因）",
    "h-lag": "索引落后链头（区块数）",
    "h-backlog": "待写入的审计记录",
    "need-key": "请输入运维密钥。",
    "loading": "正在读取……",
    "unauthenticated": "密钥无效或已吊销（401）。",
    "forbidden": "此密钥不是运维密钥（403）。请用 elicence apikey create --operator 创建。",
    "limited": "请求过于频繁（429），稍后自动重试。",
    "failed": "无法读取数据：{0}",
    "updated": "更新于 {0}，每 10 秒一个点。",
    "scope-all": "数据来源：本机 elicence serve 的全部工作进程（汇总）；负载均衡后的其他副本不在其中，请看 Grafana。",
    "scope-one": "数据来源：应答的工作进程（进程号 {0}）；其他进程和副本不在其中，请看 Grafana。",
    "since": "本进程自 {0} 起采样。",
    "no-data": "暂无数据",
    "lag": "落后区块",
    "backlog": "审计记录",
    "v-VALID": "有效",
    "v-TAMPERED": "已被篡改",
    "v-NOT_ANCHORED": "未上链",
    "v-ISSUER_NOT_AUTHORISED": "发证机关未获授权",
    "v-REVOKED": "已吊销",
    "v-CANCELLED": "已注销",
    "v-SUPERSEDED": "已被换发",
    "v-SUSPENDED": "已暂扣",
    "v-EXPIRED": "已过期",
    "v-NOT_YET_VALID": "尚未生效",
    "v-COULD_NOT_CHECK": "无法核验（链不可读）",
    "r-400": "请求格式错误 400",
    "r-401": "未认证 401",
    "r-403": "无权限 403",
    "r-404": "不存在 404",
    "r-413": "请求过大 413",
    "r-415": "类型不支持 415",
    "r-422": "无法读取证照 422",
    "r-429": "超出频率 429",
    "r-500": "内部错误 500",
    "r-503": "链或审计不可用 503",
  },
  en: {
    "title": "elicence verify service · operator",
    "brand": "elicence · operator",
    "h1": "The verify service in the last hour",
    "key-label": "Operator key",
    "key-hint": "Made by elicence apikey create --operator. It is kept in this tab only.",
    "key-submit": "Show",
    "key-forget": "Forget the key",
    "switch": "中文",
    "h-verdicts": "Verifications per second, by verdict",
    "h-latency": "Verification latency (ms, percentiles)",
    "h-rejected": "Rejected requests per second, by reason",
    "h-lag": "Index lag behind the chain head (blocks)",
    "h-backlog": "Audit records waiting for the log",
    "need-key": "Enter the operator key.",
    "loading": "Reading…",
    "unauthenticated": "The key is unknown or revoked (401).",
    "forbidden": "This key is not an operator key (403). Create one with elicence apikey create --operator.",
    "limited": "Too many requests (429); trying again shortly.",
    "failed": "Could not read the data: {0}",
    "updated": "Updated at {0}; one point every 10 s.",
    "scope-all": "Source: every worker process of this host's elicence serve (summed); other replicas behind the load balancer are not included: see Grafana.",
    "scope-one": "Source: the worker process that answered (pid {0}); other processes and replicas are not included: see Grafana.",
    "since": "This process has sampled since {0}.",
    "no-data": "No data yet",
    "lag": "blocks behind",
    "backlog": "audit records",
    "v-VALID": "valid",
    "v-TAMPERED": "tampered",
    "v-NOT_ANCHORED": "not anchored",
    "v-ISSUER_NOT_AUTHORISED": "issuer not authorised",
    "v-REVOKED": "revoked",
    "v-CANCELLED": "cancelled",
    "v-SUPERSEDED": "superseded",
    "v-SUSPENDED": "suspended",
    "v-EXPIRED": "expired",
    "v-NOT_YET_VALID": "not yet valid",
    "v-COULD_NOT_CHECK": "could not check (chain)",
    "r-400": "malformed 400",
    "r-401": "unauthenticated 401",
    "r-403": "not permitted 403",
    "r-404": "not found 404",
    "r-413": "too large 413",
    "r-415": "unsupported type 415",
    "r-422": "unreadable licence 422",
    "r-429": "over the rate 429",
    "r-500": "internal error 500",
    "r-503": "chain or audit unavailable 503",
  },
};

const COLOURS = ["#0b57d0", "#b3261e", "#13733a", "#8a4d00", "#6b3fa0", "#00707a", "#a1306b", "#4a4a4a", "#5b6e00", "#c2410c", "#1f3a61"];
const VERDICT_COLOURS = { VALID: "#13733a", TAMPERED: "#b3261e", COULD_NOT_CHECK: "#4a4a4a", REVOKED: "#8a4d00" };

let lang = initialLanguage();
let last = null;
let timer = null;

function initialLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "zh") return asked;
  try {
    const kept = localStorage.getItem(LANG_STORE);
    if (kept === "en" || kept === "zh") return kept;
  } catch {
    // storage may be off; Chinese is the default then
  }
  return "zh";
}

function t(key, ...values) {
  const found = text[lang][key] ?? text.zh[key] ?? key;
  return found.replace(/\{(\d)\}/g, (_, i) => String(values[Number(i)]));
}

function applyText() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const toggle = document.getElementById("lang");
  toggle.textContent = t("switch");
  toggle.lang = lang === "zh" ? "en" : "zh-CN";
}

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

function say(message, bad = false) {
  const node = document.getElementById("message");
  node.textContent = message;
  node.classList.toggle("message--bad", bad);
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function node(name, attributes = {}, parent = null) {
  const made = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, String(value));
  if (parent) parent.appendChild(made);
  return made;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
  return 10 * step;
}

function format(value) {
  if (value >= 1000) return `${Math.round(value / 100) / 10}k`;
  if (value >= 10) return String(Math.round(value));
  return String(Math.round(value * 100) / 100);
}

// One chart: `lines` is [{label, colour, values}] over `times` (Unix ms).
function draw(section, times, lines) {
  const svg = section.querySelector("svg");
  svg.replaceChildren();
  const legend = section.querySelector(".legend");
  legend.replaceChildren();
  const plotted = lines.filter((line) => line.values.some((v) => v !== null));
  const left = PAD.left;
  const right = W - PAD.right;
  const top = PAD.top;
  const bottom = H - PAD.bottom;
  const all = plotted.flatMap((line) => line.values.filter((v) => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const start = times.length ? Math.min(times[0], times[times.length - 1] - 3600_000) : 0;
  const end = times.length ? times[times.length - 1] : 1;
  const x = (ms) => left + ((ms - start) / Math.max(1, end - start)) * (right - left);
  const y = (v) => bottom - (v / max) * (bottom - top);
  for (const fraction of [0, 0.5, 1]) {
    node("line", { x1: left, x2: right, y1: y(max * fraction), y2: y(max * fraction), stroke: "#d5d8de" }, svg);
    const label = node("text", { x: left - 6, y: y(max * fraction) + 6, "text-anchor": "end" }, svg);
    label.textContent = format(max * fraction);
  }
  node("line", { x1: left, x2: left, y1: top, y2: bottom, stroke: "#8a8f98" }, svg);
  if (times.length) {
    for (const [ms, anchor] of [[start, "start"], [end, "end"]]) {
      const label = node("text", { x: x(ms), y: H - 8, "text-anchor": anchor }, svg);
      label.textContent = clock(ms);
    }
  }
  svg.dataset.points = String(all.length);
  if (!plotted.length) {
    const empty = node("text", { x: (left + right) / 2, y: (top + bottom) / 2, "text-anchor": "middle" }, svg);
    empty.textContent = t("no-data");
    return;
  }
  for (const line of plotted) {
    let d = "";
    let pen = false;
    line.values.forEach((v, i) => {
      if (v === null) {
        pen = false; // a gap: the value was not known then
        return;
      }
      d += `${pen ? "L" : "M"}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const path = node("path", { d, fill: "none", stroke: line.colour, "stroke-width": 2, "stroke-linejoin": "round" }, svg);
    path.dataset.series = line.label;
    // A lone point would draw nothing as a path: a dot shows it.
    line.values.forEach((v, i) => {
      if (v !== null && (line.values[i - 1] ?? null) === null && (line.values[i + 1] ?? null) === null) {
        node("circle", { cx: x(times[i]), cy: y(v), r: 3, fill: line.colour }, svg);
      }
    });
    const item = document.createElement("li");
    const swatch = node("svg", { viewBox: "0 0 10 10", "aria-hidden": "true" });
    node("rect", { width: 10, height: 10, fill: line.colour }, swatch);
    const newest = [...line.values].reverse().find((v) => v !== null);
    item.append(swatch, `${line.label}: ${format(newest ?? 0)}`);
    legend.appendChild(item);
  }
}

function keyed(map, prefix, colours) {
  return Object.keys(map).sort().map((key, i) => ({
    label: t(`${prefix}${key}`) === `${prefix}${key}` ? key : t(`${prefix}${key}`),
    colour: colours[key] ?? COLOURS[i % COLOURS.length],
    values: map[key],
  }));
}

function render() {
  if (!last) return;
  const data = last;
  const charts = document.getElementById("charts");
  charts.hidden = false;
  const section = (name) => charts.querySelector(`[data-chart="${name}"]`);
  draw(section("verdicts"), data.times, keyed(data.verdicts, "v-", VERDICT_COLOURS));
  draw(section("latency"), data.times, ["p50", "p95", "p99"].map((name, i) => ({
    label: name, colour: COLOURS[i], values: data.latencyMs[name],
  })));
  draw(section("rejected"), data.times, keyed(data.rejected, "r-", {}));
  draw(section("lag"), data.times, [{ label: t("lag"), colour: COLOURS[0], values: data.indexLag }]);
  draw(section("backlog"), data.times, [{ label: t("backlog"), colour: COLOURS[3], values: data.auditBacklog }]);
  document.getElementById("scope").textContent =
    (data.aggregated ? t("scope-all") : t("scope-one", data.pid)) +
    (data.since ? ` ${t("since", clock(data.since))}` : "");
  say(t("updated", clock(Date.now())));
}

async function refresh() {
  clearTimeout(timer);
  const key = storedKey();
  if (!key) {
    say(t("need-key"));
    return;
  }
  document.getElementById("forget").hidden = false;
  try {
    const answer = await fetch("/v1/operator/series", {
      headers: { Authorization: `Bearer ${key}` },
      cache: "no-store",
    });
    if (answer.status === 401 || answer.status === 403) {
      last = null;
      document.getElementById("charts").hidden = true;
      say(t(answer.status === 401 ? "unauthenticated" : "forbidden"), true);
      return; // no retry with a key that will not work
    }
    if (answer.status === 429) {
      say(t("limited"), true);
    } else if (!answer.ok) {
      say(t("failed", `HTTP ${answer.status}`), true);
    } else {
      last = await answer.json();
      render();
    }
  } catch (error) {
    say(t("failed", error.message), true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("key");
  const key = input.value.trim();
  input.value = "";
  if (!key) {
    say(t("need-key"), true);
    return;
  }
  try {
    sessionStorage.setItem(KEY_STORE, key);
  } catch {
    say(t("failed", "sessionStorage"), true);
    return;
  }
  say(t("loading"));
  refresh();
});

document.getElementById("forget").addEventListener("click", () => {
  try {
    sessionStorage.removeItem(KEY_STORE);
  } catch {
    // nothing kept
  }
  clearTimeout(timer);
  last = null;
  document.getElementById("charts").hidden = true;
  document.getElementById("forget").hidden = true;
  document.getElementById("scope").textContent = "";
  say(t("need-key"));
});

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  try {
    localStorage.setItem(LANG_STORE, lang);
  } catch {
    // not kept; the switch works for this page
  }
  applyText();
  render();
});

applyText();
refresh();
document.body.dataset.ready = "true";
