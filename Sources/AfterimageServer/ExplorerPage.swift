/// The explorer's page: HTML, CSS and plain JavaScript in one response, nothing fetched from
/// elsewhere. The state of a view (image, edits) lives in the URL's fragment, so a link reopens it.
enum ExplorerPage {
  static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Afterimage explorer</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: 0.6em 1em; background: #263238; color: #eee; }
  header h1 { font-size: 1.1em; margin: 0; }
  #latency { font-variant-numeric: tabular-nums; }
  #status { color: #ffab91; }
  main { display: grid; grid-template-columns: 290px 1fr; gap: 1em; padding: 1em; }
  .panel { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.7em; }
  #strip { display: grid; grid-template-columns: repeat(4, 1fr); gap: 4px; }
  #strip figure { margin: 0; cursor: pointer; border: 2px solid transparent; text-align: center; font-size: 10px; }
  #strip figure.selected { border-color: #1976d2; }
  #strip figure.second { border-color: #f57c00; }
  #strip img { width: 100%; image-rendering: pixelated; }
  .wrong { color: #c62828; }
  #columns { display: flex; gap: 1em; flex-wrap: wrap; }
  .column { flex: 1 1 300px; }
  .column img.reconstruction { width: 100%; image-rendering: pixelated; background: #eee; min-height: 64px; }
  #original { width: 128px; image-rendering: pixelated; }
  .bars div { display: flex; align-items: center; gap: 4px; font-size: 11px; }
  .bars span.name { width: 90px; overflow: hidden; white-space: nowrap; }
  .bars span.bar { background: #1976d2; height: 9px; }
  .sliders label { display: grid; grid-template-columns: 90px 1fr 52px; gap: 4px; align-items: center; font-size: 12px; }
  .controls label { display: grid; grid-template-columns: 110px 1fr 52px; gap: 4px; align-items: center; font-size: 12px; }
  input[type=range] { width: 100%; }
  button { margin: 2px; }
  .verdicts { font-size: 12px; color: #555; }
</style>
</head>
<body>
<header><h1>Afterimage explorer</h1><span id="latency">edit → image: –</span><span id="status"></span></header>
<main>
  <div>
    <div class="panel">
      <div><button id="previous">◀</button> page <span id="pageNumber">1</span> of <span id="pageCount">?</span> <button id="next">▶</button></div>
      <div id="strip"></div>
      <p>Click an image to invert it; shift-click picks the second image to walk toward.</p>
      <label>Upload a PNG or JPEG <input type="file" id="upload" accept="image/png,image/jpeg"></label>
    </div>
  </div>
  <div>
    <div class="panel" style="display:flex; gap:1em; flex-wrap:wrap">
      <div><img id="original" alt="the original"><div id="originalLabel"></div></div>
      <div class="bars" id="bars" style="flex:1 1 200px"></div>
      <div class="controls" style="flex:1 1 330px">
        <label>walk to second (α) <input type="range" id="alpha" min="0" max="1" step="0.01" value="0"><output id="alphaValue">0</output></label>
        <label>transform <select id="transform"><option value="">none</option></select><span></span></label>
        <label>magnitude <input type="range" id="magnitude" min="0" max="1" step="0.01" value="0"><output id="magnitudeValue">0</output></label>
        <label>shift (add c) <input type="range" id="shift" min="-20" max="20" step="0.1" value="0"><output id="shiftValue">0</output></label>
        <label>scale (×) <input type="range" id="scale" min="0.1" max="5" step="0.05" value="1"><output id="scaleValue">1</output></label>
        <label>noise σ <input type="range" id="noise" min="0" max="2" step="0.01" value="0"><output id="noiseValue">0</output></label>
        <label>keep top k <input type="range" id="topK" min="1" max="10" step="1" value="10"><output id="topKValue">all</output></label>
        <label>samples <input type="range" id="samples" min="1" max="8" step="1" value="3"><output id="samplesValue">3</output></label>
        <div><button id="resample">resample noise</button><button id="reset">reset edits</button><a id="permalink" href="#">permalink</a></div>
      </div>
    </div>
    <div class="panel sliders" id="sliders"></div>
    <div id="columns"></div>
  </div>
</main>
<script>
"use strict";
const state = { image: "t0", second: null, alpha: 0, transform: "", magnitude: 0, delta: null, shift: 0, scale: 1,
  noise: 0, topK: 0, samples: 3, seed: 0, page: 0 };
let info = null, base = null, inFlight = false, pending = false;
const $ = (id) => document.getElementById(id);
const perPage = 24;

function status(message) { $("status").textContent = message || ""; }

async function json(url, body) {
  const response = await fetch(url, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const key of ["image", "second", "transform"]) if (params.has(key)) state[key] = params.get(key) || null;
  for (const key of ["alpha", "magnitude", "shift", "scale", "noise", "topK", "samples", "seed"])
    if (params.has(key) && isFinite(Number(params.get(key)))) state[key] = Number(params.get(key));
  if (params.has("delta")) state.delta = params.get("delta").split(",").map(Number);
  if (state.transform === null) state.transform = "";
}

function writeHash() {
  const params = new URLSearchParams();
  params.set("image", state.image);
  if (state.second) params.set("second", state.second);
  for (const key of ["alpha", "transform", "magnitude", "shift", "scale", "noise", "topK", "samples", "seed"]) params.set(key, state[key]);
  if (state.delta && state.delta.some((d) => d !== 0)) params.set("delta", state.delta.map((d) => d.toFixed(2)).join(","));
  history.replaceState(null, "", "#" + params.toString());
  $("permalink").href = location.href;
}

function edit() {
  const e = { image: state.image, samples: state.samples, seed: state.seed };
  if (state.second) { e.second = state.second; e.alpha = state.alpha; }
  if (state.transform) { e.transform = state.transform; e.magnitude = state.magnitude; }
  if (state.delta) e.delta = state.delta;
  if (state.shift) e.shift = state.shift;
  if (state.scale !== 1) e.scale = state.scale;
  if (state.noise) e.noise = state.noise;
  if (state.topK && state.topK < info.inverters[0].classNames.length) e.topK = state.topK;
  return e;
}

async function loadPage() {
  const data = await json(`/api/images?page=${state.page}&per=${perPage}`);
  $("pageNumber").textContent = state.page + 1;
  $("pageCount").textContent = data.pages;
  const strip = $("strip");
  strip.innerHTML = "";
  for (const item of data.images) {
    const figure = document.createElement("figure");
    figure.dataset.image = item.image;
    const img = document.createElement("img");
    img.src = `/api/image/${item.image}`;
    img.alt = item.labelName;
    const caption = document.createElement("figcaption");
    caption.textContent = item.labelName;
    if (item.predicted !== item.label) { caption.className = "wrong"; caption.textContent += " → " + item.predictedName; }
    figure.append(img, caption);
    figure.addEventListener("click", (event) => event.shiftKey ? chooseSecond(item.image) : chooseImage(item.image));
    strip.append(figure);
  }
  markStrip();
}

function markStrip() {
  for (const figure of $("strip").children) {
    figure.classList.toggle("selected", figure.dataset.image === state.image);
    figure.classList.toggle("second", figure.dataset.image === state.second);
  }
}

async function chooseImage(id) { state.image = id; await refreshLogits(); }
async function chooseSecond(id) { state.second = id === state.second ? null : id; await refreshLogits(); }

async function refreshLogits() {
  try {
    const body = { image: state.image };
    if (state.second) { body.second = state.second; body.alpha = state.alpha; }
    if (state.transform) { body.transform = state.transform; body.magnitude = state.magnitude; }
    base = await json("/api/logits", body);
    $("original").src = `/api/image/${state.image}`;
    const names = info.inverters[0].classNames;
    $("originalLabel").textContent = `${state.image}: predicted ${names[base.predicted[0]]}` + (state.second ? `, walking to ${state.second}` : "");
    if (!state.delta || state.delta.length !== names.length) state.delta = names.map(() => 0);
    drawBars();
    buildSliders();
    markStrip();
    status("");
    update();
  } catch (error) { status(error.message); }
}

function drawBars() {
  const names = info.inverters[0].classNames;
  const bars = $("bars");
  bars.innerHTML = "<b>softmax (" + info.inverters[0].name + ")</b>";
  base.softmax[0].forEach((p, k) => {
    const row = document.createElement("div");
    row.innerHTML = `<span class="name"></span><span class="bar" style="width:${Math.round(140 * p)}px"></span><span>${(100 * p).toFixed(1)}%</span>`;
    row.querySelector(".name").textContent = names[k];
    bars.append(row);
  });
}

function buildSliders() {
  const names = info.inverters[0].classNames;
  const sliders = $("sliders");
  sliders.innerHTML = "<b>logits</b> (the first column's; every column gets the same change)";
  names.forEach((name, k) => {
    const start = base.logits[0][k];
    const label = document.createElement("label");
    label.innerHTML = `<span></span><input type="range" step="0.05"><output></output>`;
    label.querySelector("span").textContent = name;
    const input = label.querySelector("input");
    input.min = (start - 20).toFixed(2); input.max = (start + 20).toFixed(2);
    input.value = (start + state.delta[k]).toFixed(2);
    input.dataset.index = k;
    input.className = "logit";
    const output = label.querySelector("output");
    output.textContent = Number(input.value).toFixed(2);
    input.addEventListener("input", () => {
      state.delta[k] = Number(input.value) - start;
      output.textContent = Number(input.value).toFixed(2);
      update();
    });
    sliders.append(label);
  });
}

function buildColumns() {
  const columns = $("columns");
  columns.innerHTML = "";
  info.inverters.forEach((inverter, index) => {
    const column = document.createElement("div");
    column.className = "panel column";
    column.innerHTML = `<b></b><img class="reconstruction" id="reconstruction${index}" alt="reconstruction"><div class="verdicts" id="verdicts${index}"></div>`;
    column.querySelector("b").textContent = inverter.name;
    columns.append(column);
  });
}

// At most one round of requests in flight; an edit made meanwhile is sent when it returns.
async function update() {
  writeHash();
  if (inFlight) { pending = true; return; }
  inFlight = true;
  const body = JSON.stringify(edit());
  const started = performance.now();
  try {
    await Promise.all(info.inverters.map(async (inverter, index) => {
      const response = await fetch(`/api/reconstruct?column=${index}`, { method: "POST", body });
      if (!response.ok) throw new Error((await response.json()).error.message);
      const blob = await response.blob();
      const img = $(`reconstruction${index}`);
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(blob);
      const verdicts = JSON.parse(response.headers.get("X-Verdicts") || "[]");
      $(`verdicts${index}`).textContent = verdicts.length ? "evaluation classifier: " + verdicts.join(", ") : "";
      img.dataset.serverMs = response.headers.get("X-Latency-Ms");
    }));
    const total = performance.now() - started;
    $("latency").textContent = `edit → image: ${total.toFixed(0)} ms (server ${$("reconstruction0").dataset.serverMs} ms)`;
    status("");
  } catch (error) { status(error.message); }
  inFlight = false;
  if (pending) { pending = false; update(); }
}

function bindControl(id, key, format, refetch) {
  const input = $(id), output = $(id + "Value");
  input.value = state[key];
  const show = () => { if (output) output.textContent = format ? format(Number(input.value)) : input.value; };
  show();
  input.addEventListener("input", () => {
    state[key] = Number(input.value);
    show();
    refetch ? refreshLogits() : update();
  });
}

async function main() {
  readHash();
  try { info = await json("/api/inverters"); } catch (error) { status(error.message); return; }
  const classes = info.inverters[0].classNames.length;
  $("topK").max = classes;
  if (!state.topK) state.topK = classes;
  for (const name of info.transforms) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    $("transform").append(option);
  }
  $("transform").value = state.transform;
  $("transform").addEventListener("change", () => { state.transform = $("transform").value; refreshLogits(); });
  bindControl("alpha", "alpha", null, true);
  bindControl("magnitude", "magnitude", null, true);
  bindControl("shift", "shift");
  bindControl("scale", "scale");
  bindControl("noise", "noise");
  bindControl("topK", "topK", (k) => k >= classes ? "all" : String(k));
  bindControl("samples", "samples");
  $("resample").addEventListener("click", () => { state.seed += 1; update(); });
  $("reset").addEventListener("click", () => {
    Object.assign(state, { delta: null, shift: 0, scale: 1, noise: 0, topK: classes, alpha: 0, second: null, transform: "", magnitude: 0 });
    for (const [id, key] of [["shift", "shift"], ["scale", "scale"], ["noise", "noise"], ["topK", "topK"], ["alpha", "alpha"], ["magnitude", "magnitude"]]) $(id).value = state[key];
    $("transform").value = "";
    refreshLogits();
  });
  $("previous").addEventListener("click", () => { if (state.page > 0) { state.page -= 1; loadPage(); } });
  $("next").addEventListener("click", () => { if ((state.page + 1) * perPage < info.testCount) { state.page += 1; loadPage(); } });
  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    try {
      const response = await fetch("/api/upload", { method: "POST", body: file });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error.message);
      await chooseImage(data.image);
    } catch (error) { status(error.message); }
  });
  buildColumns();
  await loadPage();
  await refreshLogits();
}
main();
</script>
</body>
</html>
"""#
}
