// The teaching slice viewer: PNG renderings of a case's de-identified slices on a canvas,
// a slider (and the mouse wheel) through the stack, the reference necrosis and the
// student's own marking as overlays on the result page, and a brush to mark necrosis on
// the case page. Marks go with the answer form as one PNG per marked slice (RGBA, alpha
// > 0 = necrosis), which the server measures with the engine.
(function () {
  "use strict";
  const configNode = document.getElementById("slices-config");
  const canvas = document.getElementById("slice-canvas");
  if (!configNode || !canvas) return;
  const config = JSON.parse(configNode.textContent);
  const images = config.images || [];
  const slider = document.getElementById("slice");
  const label = document.getElementById("slice-label");
  const ctx = canvas.getContext("2d");
  const cache = new Map();
  const masks = new Map(); // image id -> offscreen canvas with the student's marks
  let current = Math.floor(images.length / 2);
  let painting = false;

  function loadImage(url) {
    if (!url) return Promise.resolve(null);
    if (!cache.has(url)) {
      cache.set(url, new Promise((resolve) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => resolve(null);
        img.src = url;
      }));
    }
    return cache.get(url);
  }

  function labelLayer(img, value, rgba) {
    // Pixels of the label PNG equal to ``value`` in colour ``rgba``.
    const off = document.createElement("canvas");
    off.width = img.width; off.height = img.height;
    const o = off.getContext("2d");
    o.drawImage(img, 0, 0);
    const data = o.getImageData(0, 0, off.width, off.height);
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const hit = px[i] === value;
      px[i] = rgba[0]; px[i + 1] = rgba[1]; px[i + 2] = rgba[2]; px[i + 3] = hit ? rgba[3] : 0;
    }
    o.putImageData(data, 0, 0);
    return off;
  }

  function maskFor(image) {
    if (!masks.has(image.id)) {
      const off = document.createElement("canvas");
      off.width = image.columns; off.height = image.rows;
      masks.set(image.id, off);
    }
    return masks.get(image.id);
  }

  function checked(id) {
    const box = document.getElementById(id);
    return !box || box.checked;
  }

  async function draw() {
    const image = images[current];
    if (!image) return;
    canvas.width = image.columns; canvas.height = image.rows;
    const base = await loadImage(image.png_url);
    if (images[current] !== image) return;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (base) ctx.drawImage(base, 0, 0);
    if (config.mode === "result") {
      if (checked("show-reference")) {
        const ref = await loadImage(image.reference_url);
        if (ref) { ctx.globalAlpha = 0.45; ctx.drawImage(labelLayer(ref, 2, [255, 64, 64, 255]), 0, 0); }
      }
      if (checked("show-mine")) {
        const mine = await loadImage(image.mask_url);
        if (mine) { ctx.globalAlpha = 0.45; ctx.drawImage(labelLayer(mine, 1, [74, 163, 255, 255]), 0, 0); }
      }
      ctx.globalAlpha = 1;
    } else if (masks.has(image.id)) {
      ctx.globalAlpha = 0.5;
      ctx.drawImage(masks.get(image.id), 0, 0);
      ctx.globalAlpha = 1;
    }
    if (label) label.textContent = `${current + 1} / ${images.length}`;
  }

  function go(index) {
    current = Math.max(0, Math.min(images.length - 1, index));
    if (slider) slider.value = String(current + 1);
    draw();
  }

  if (slider) {
    slider.max = String(Math.max(images.length, 1));
    slider.addEventListener("input", () => go(Number(slider.value) - 1));
  }
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    go(current + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  document.querySelectorAll("#show-reference, #show-mine").forEach((box) => box.addEventListener("change", draw));

  // --- marking necrosis (the case page) ----------------------------------------------------
  function tool() {
    const picked = document.querySelector('input[name="tool"]:checked');
    return picked ? picked.value : "look";
  }

  function paint(event) {
    const image = images[current];
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * canvas.width;
    const y = ((event.clientY - rect.top) / rect.height) * canvas.height;
    const brush = Number((document.getElementById("brush") || { value: 4 }).value);
    const m = maskFor(image).getContext("2d");
    m.globalCompositeOperation = tool() === "eraser" ? "destination-out" : "source-over";
    m.fillStyle = "rgb(255, 64, 64)";
    m.beginPath(); m.arc(x, y, brush, 0, 2 * Math.PI); m.fill();
    draw();
  }

  if (config.mode === "answer") {
    canvas.addEventListener("pointerdown", (event) => {
      if (tool() === "look") return;
      painting = true; canvas.setPointerCapture(event.pointerId); paint(event);
    });
    canvas.addEventListener("pointermove", (event) => { if (painting) paint(event); });
    canvas.addEventListener("pointerup", () => { painting = false; });
    const clear = document.getElementById("clear-slice");
    if (clear) clear.addEventListener("click", () => { masks.delete(images[current].id); draw(); });
    const form = document.getElementById("answer-form");
    if (form) {
      form.addEventListener("submit", () => {
        const out = [];
        for (const image of images) {
          const mask = masks.get(image.id);
          if (!mask) continue;
          const alpha = mask.getContext("2d").getImageData(0, 0, mask.width, mask.height).data;
          let any = false;
          for (let i = 3; i < alpha.length; i += 4) { if (alpha[i] > 0) { any = true; break; } }
          if (any) out.push({ image_id: image.id, png_base64: mask.toDataURL("image/png").split(",")[1] });
        }
        document.getElementById("masks-json").value = JSON.stringify(out);
      });
    }
  }
  go(current);
})();
