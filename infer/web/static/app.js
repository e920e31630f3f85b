// The page `nst web` writes: a shipped style network on onnxruntime-web, run on the visitor's device.
// models.json (written by `nst web`) lists the networks, their styles and paintings; ort/ holds the runtime.
// Every failure is one message in the page; the page keeps working after it.

const $ = (id) => document.getElementById(id);
const MAX_FILE_MB = 100;          // larger files are refused before decoding (a tab can run out of memory)
const MAX_MEGAPIXELS = 100;       // larger photos are refused before their pixels are decoded
const MAX_SIDE = 2048;            // "the photo's own" size is capped here
const BACKENDS = {
  wasm: { module: "./ort/ort.wasm.min.mjs", label: "CPU (WebAssembly)" },
  webgpu: { module: "./ort/ort.webgpu.min.mjs", label: "GPU (WebGPU)" },
};

const state = {
  manifest: null, entry: null, session: null, ort: null, backend: "wasm", weights: [],
  photo: null, photoName: "photo", camera: null, busy: false, again: false, runs: 0, times: [],
  loading: null, request: null,
};

// ------------------------------------------------------------------------------------------------ messages

function showError(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
  document.body.dataset.state = "error";
}

function clearError() {
  $("message").hidden = true;
  $("message").textContent = "";
}

function status(text) { $("status").textContent = text; }

function reason(error) {
  const text = String(error && error.message ? error.message : error);
  return text.split("\n")[0].slice(0, 300);
}

// ------------------------------------------------------------------------------------------------ runtime and model

async function runtime(backend) {
  const ort = await import(BACKENDS[backend].module);
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  // Threads need a cross-origin-isolated page (`nst web --serve` and the Space's headers give one); else one thread.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
  return ort;
}

async function gpuHasF16() {
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  if (!adapter) throw new Error("this browser offers WebGPU but found no usable GPU adapter");
  return adapter.features.has("shader-f16");
}

// Loads run one after another (WebGPU refuses a second session while one is being created); a load asked for
// while another runs replaces any still waiting, so only the last choice is loaded.
function loadModel() {
  const entry = state.manifest.models[Number($("model").value)];
  const backend = $("backend").value;
  if (state.request && state.request.entry === entry && state.request.backend === backend) return state.loading;
  const request = (state.request = { entry, backend });   // the same choice again (a script's event) loads nothing
  state.loading = (state.loading || Promise.resolve()).then(() => (request === state.request ? load(request) : null));
  return state.loading;
}

async function load({ entry, backend }) {
  state.entry = entry;
  state.backend = backend;
  clearError();
  showStyles(entry);
  const old = state.session;
  state.session = null;   // no new frame starts on it
  if (old) { await state.inflight?.catch(() => {}); await old.release?.(); }
  document.body.dataset.state = "loading";
  status(`loading ${entry.name} for the ${BACKENDS[backend].label}…`);
  try {
    if (backend === "webgpu" && !navigator.gpu) throw new Error("this browser does not offer WebGPU; choose the CPU");
    // On the CPU a shipped network's int8 copy (1.15-1.5x faster, as good); on a GPU without float16 shaders the
    // float32 copy of a network that computes in float16.
    let file = entry.file;
    if (backend === "wasm" && entry.file_int8) file = entry.file_int8;
    if (backend === "webgpu" && entry.file_fp32 && !(await gpuHasF16())) file = entry.file_fp32;
    const ort = await runtime(backend);
    state.session = await ort.InferenceSession.create(file, { executionProviders: [backend] });
    state.ort = ort;
    document.body.dataset.file = file;   // which file runs (tests compare it with Python on the same file)
    status(`${entry.name}${file === entry.file_int8 ? " (int8)" : ""} ready on the ${BACKENDS[backend].label}` +
           (backend === "wasm" ? `, ${ort.env.wasm.numThreads} thread(s)` : ""));
    document.body.dataset.state = "ready";
    if (state.photo && !state.camera) await render();
  } catch (error) {
    status("");
    showError(`${entry.name}: the network did not load on the ${BACKENDS[backend].label} (${reason(error)})` +
              (backend === "webgpu" ? "; the CPU (WebAssembly) runs every network" : ""));
  } finally {
    document.body.dataset.loaded = `${entry.name}@${backend}`;   // this choice is settled, loaded or not
  }
}

// ------------------------------------------------------------------------------------------------ styles

function showStyles(entry) {
  const box = $("styles");
  box.replaceChildren();
  state.weights = entry.styles.map((_, i) => (i === 0 ? 1 : 0));
  const multi = entry.styles.length > 1;
  entry.styles.forEach((name, i) => {
    const item = document.createElement("div");
    item.className = "style" + (i === 0 ? " on" : "");
    const painting = entry.paintings[name];
    if (painting) {
      const img = document.createElement("img");
      img.src = painting;
      img.alt = name;
      img.title = multi ? `${name} alone` : name;
      if (multi) img.addEventListener("click", () => setWeights(entry.styles.map((_, j) => (j === i ? 1 : 0))));
      item.append(img);
    }
    item.append(document.createTextNode(name.replaceAll("_", " ")));
    if (multi) {
      const slider = Object.assign(document.createElement("input"),
                                   { type: "range", min: 0, max: 100, value: i === 0 ? 100 : 0 });
      slider.setAttribute("aria-label", `weight of ${name}`);
      slider.dataset.style = name;
      slider.addEventListener("input", () => {
        setWeights([...box.querySelectorAll("input[type=range]")].map((s) => Number(s.value)), false);
      });
      item.append(slider);
    }
    box.append(item);
  });
}

function setWeights(weights, moveSliders = true) {
  state.weights = weights;
  const items = [...$("styles").querySelectorAll(".style")];
  items.forEach((item, i) => {
    item.classList.toggle("on", weights[i] > 0);
    const slider = item.querySelector("input[type=range]");
    if (slider && moveSliders) slider.value = Math.round(100 * weights[i]);
  });
  if (state.photo && !state.camera) render();
}

function styleVector() {
  const total = state.weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error("give at least one style a weight above zero");
  return Float32Array.from(state.weights, (w) => w / total);
}

function styleText() {
  const names = state.entry.styles;
  if (names.length < 2) return names[0] || state.entry.name;
  const v = styleVector();
  const parts = names.map((n, i) => [n, v[i]]).filter(([, w]) => w > 0);
  return parts.length === 1 ? parts[0][0] : parts.map(([n, w]) => `${n}=${w.toFixed(2)}`).join(",");
}

// ------------------------------------------------------------------------------------------------ pictures

function targetSize(width, height) {
  const chosen = Number($("size").value);
  const longer = Math.max(width, height);
  const side = chosen > 0 ? chosen : Math.min(longer, MAX_SIDE);
  const scale = side / longer;
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function drawInput(source, width, height) {
  const [w, h] = targetSize(width, height);
  const canvas = $("input");
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h);
}

function toTensor(ort, image, scale) {
  const { data, width, height } = image;
  const n = width * height;
  const x = new Float32Array(3 * n);
  const k = scale / 255;
  for (let i = 0; i < n; i++) {
    x[i] = data[4 * i] * k;
    x[n + i] = data[4 * i + 1] * k;
    x[2 * n + i] = data[4 * i + 2] * k;
  }
  return new ort.Tensor("float32", x, [1, 3, height, width]);
}

function drawOutput(y, width, height, scale, canvas) {
  const n = width * height;
  const out = new ImageData(width, height);
  const k = 255 / scale;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out.data[4 * i + c] = Math.round(Math.min(Math.max(y[c * n + i] * k, 0), 255));
    out.data[4 * i + 3] = 255;
  }
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  canvas.getContext("2d").putImageData(out, 0, 0);
}

// A network that takes one size only (the ONNX model zoo's): the picture goes in at that size and comes back out.
function resized(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

async function stylize(image) {
  const fixed = state.entry.fixed_size;
  if (!fixed || (fixed[0] === image.height && fixed[1] === image.width)) return run(image, $("output"));
  const small = new OffscreenCanvas(fixed[1], fixed[0]);
  const ms = await run(resized($("input"), fixed[1], fixed[0]), small);   // the input canvas holds the picture
  const canvas = $("output");
  if (canvas.width !== image.width || canvas.height !== image.height) { canvas.width = image.width; canvas.height = image.height; }
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, image.width, image.height);
  return ms;
}

async function run(image, canvas) {
  const { ort, session, entry } = state;
  const feeds = { [session.inputNames[0]]: toTensor(ort, image, entry.input_scale) };
  if (session.inputNames.length > 1) {
    const v = styleVector();
    feeds[session.inputNames[1]] = new ort.Tensor("float32", v, [v.length]);
  }
  const t0 = performance.now();
  state.inflight = session.run(feeds);
  const result = await state.inflight;
  const ms = performance.now() - t0;
  const y = result[session.outputNames[0]];
  drawOutput(y.data, image.width, image.height, entry.input_scale, canvas);
  return ms;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : 0;
}

function report(ms, width, height) {
  state.times.push(ms);
  if (state.times.length > 30) state.times.shift();
  state.runs += 1;
  const where = BACKENDS[state.backend].label + (state.backend === "wasm" ? `, ${state.ort.env.wasm.numThreads} thread(s)` : "");
  const rate = state.camera ? `, median ${median(state.times).toFixed(0)} ms of the last ${state.times.length}` : "";
  status(`${ms.toFixed(0)} ms per frame at ${width}×${height} on the ${where}${rate}`);
  $("caption").textContent = `${styleText()}`;
  $("download").disabled = false;
  document.body.dataset.runs = String(state.runs);
  document.body.dataset.lastMs = ms.toFixed(2);
  document.body.dataset.state = "done";
}

// One picture at a time; a change while a run is under way runs once more when it ends.
async function render() {
  if (!state.session || !state.photo) return;
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  try {
    clearError();
    const image = drawInput(state.photo, state.photo.width, state.photo.height);
    const ms = await stylize(image);
    report(ms, image.width, image.height);
  } catch (error) {
    showError(`${state.entry.name}: stylizing ${state.photoName} failed (${reason(error)})`);
  } finally {
    state.busy = false;
  }
  if (state.again) { state.again = false; await render(); }
}

// ------------------------------------------------------------------------------------------------ photo input

async function openFile(file) {
  stopCamera();
  clearError();
  if (!file) return;
  if (file.size > MAX_FILE_MB * 1e6) {
    showError(`${file.name}: ${(file.size / 1e6).toFixed(0)} MB is too large (the page takes photos up to ${MAX_FILE_MB} MB)`);
    return;
  }
  const url = URL.createObjectURL(file);
  let bitmap;
  try {
    // An <img> learns the size from the header without decoding the pixels: a huge photo is refused unread.
    const img = new Image();
    try {
      await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url; });
    } catch {
      showError(`${file.name}: not an image this browser can open (${file.type || "unknown type"}); choose a JPEG, PNG or WebP photo`);
      return;
    }
    if (img.naturalWidth * img.naturalHeight > MAX_MEGAPIXELS * 1e6) {
      showError(`${file.name}: ${img.naturalWidth}×${img.naturalHeight} is too large (the page takes photos up to ${MAX_MEGAPIXELS} megapixels)`);
      return;
    }
    bitmap = await createImageBitmap(img, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (error) {
    showError(`${file.name}: could not be read (${reason(error)})`);
    return;
  } finally {
    URL.revokeObjectURL(url);
  }
  state.photo?.close?.();
  state.photo = bitmap;
  state.photoName = file.name.replace(/\.[^.]*$/, "") || "photo";
  await render();
}

async function openSample() {
  const name = state.manifest.photos[0];
  const response = await fetch(name);
  const blob = await response.blob();
  await openFile(new File([blob], name.split("/").pop(), { type: blob.type }));
}

// ------------------------------------------------------------------------------------------------ camera

async function startCamera() {
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) {
    showError("no camera access here: the browser allows it only on https:// pages and on localhost");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
  } catch (error) {
    const why = {
      NotAllowedError: "the camera was refused; allow it in the browser's site settings, or use a photo",
      NotFoundError: "no camera was found on this device; use a photo",
      NotReadableError: "the camera is in use by another program",
    }[error.name] || `the camera could not start (${reason(error)})`;
    showError(why);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  state.camera = stream;
  state.times = [];
  $("camera").textContent = "stop the camera";
  cameraLoop();
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.getTracks().forEach((t) => t.stop());
  state.camera = null;
  $("video").srcObject = null;
  $("camera").textContent = "use the camera";
}

async function cameraLoop() {
  const video = $("video");
  while (state.camera) {
    if (state.session && video.videoWidth > 0) {
      try {
        const image = drawInput(video, video.videoWidth, video.videoHeight);
        const ms = await stylize(image);
        report(ms, image.width, image.height);
        state.photoName = "camera";
      } catch (error) {
        showError(`${state.entry.name}: stylizing the camera failed (${reason(error)})`);
        stopCamera();
        return;
      }
    }
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}

// ------------------------------------------------------------------------------------------------ download

function download() {
  $("output").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${state.photoName}-${styleText().replaceAll(/[^\w.=,-]+/g, "_")}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }, "image/png");
}

// ------------------------------------------------------------------------------------------------ start

function wire() {
  $("model").addEventListener("change", loadModel);
  $("backend").addEventListener("change", loadModel);
  $("size").addEventListener("change", () => { if (!state.camera) render(); });
  $("file").addEventListener("change", (e) => { openFile(e.target.files[0]); e.target.value = ""; });
  $("sample").addEventListener("click", openSample);
  $("camera").addEventListener("click", () => (state.camera ? stopCamera() : startCamera()));
  $("download").addEventListener("click", download);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    openFile(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files || [])][0];
    if (file) openFile(file);
  });
}

async function start() {
  wire();
  try {
    const response = await fetch("models.json");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state.manifest = await response.json();
  } catch (error) {
    showError(`models.json could not be read (${reason(error)}): open the page through a web server ` +
              "(`nst web --serve`), not as a file");
    return;
  }
  const select = $("model");
  state.manifest.models.forEach((m, i) => select.add(new Option(m.label, String(i))));
  if (!navigator.gpu || !state.manifest.backends.includes("webgpu")) {
    const option = $("backend").querySelector("option[value=webgpu]");
    option.disabled = true;
    option.textContent += navigator.gpu ? " (not in this build of the page)" : " (not offered by this browser)";
  }
  if (!state.manifest.backends.includes("wasm")) $("backend").value = "webgpu";
  $("sample").hidden = !state.manifest.photos.length;
  $("footer").textContent = `Runs with onnxruntime-web ${state.manifest.runtime} on this device. ` +
                            "Networks: " + state.manifest.models.map((m) => m.name).join(", ") + ".";
  await loadModel();
}

start();
