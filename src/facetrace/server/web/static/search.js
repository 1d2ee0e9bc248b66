// Search page: preview the chosen photo, ask the server where its faces are, and let the user click
// the face to search (the hidden "face" field). Without JavaScript the form still works (face 1).
"use strict";
(() => {
  const form = document.getElementById("search-form");
  const input = document.getElementById("photo");
  const drop = document.getElementById("drop");
  const preview = document.getElementById("preview");
  const image = document.getElementById("preview-image");
  const boxes = document.getElementById("boxes");
  const faceField = document.getElementById("face");
  const status = document.getElementById("face-status");
  if (!form || !input) return;

  function choose(number, buttons) {
    faceField.value = String(number);
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.face === String(number))));
    status.textContent = `Face ${number} of ${buttons.length} will be searched.`;
  }

  async function showFaces(file) {
    boxes.replaceChildren();
    image.src = URL.createObjectURL(file);
    preview.hidden = false;
    await image.decode().catch(() => undefined);
    const body = new FormData();
    body.append("csrf", form.elements.csrf.value);
    body.append("photo", file);
    status.textContent = "Looking for faces…";
    const response = await fetch("/search/faces", { method: "POST", body, credentials: "same-origin" });
    const answer = await response.json().catch(() => ({ detail: "the server did not answer" }));
    if (!response.ok) { status.textContent = answer.detail || "No face found."; return; }
    const scaleX = image.clientWidth / image.naturalWidth;
    const scaleY = image.clientHeight / image.naturalHeight;
    const buttons = answer.faces.map((face) => {
      const [x, y, w, h] = face.box;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "facebox";
      button.dataset.face = String(face.face);
      button.setAttribute("aria-label", `Search face ${face.face}`);
      Object.assign(button.style, { left: `${x * scaleX}px`, top: `${y * scaleY}px`, width: `${w * scaleX}px`, height: `${h * scaleY}px` });
      boxes.appendChild(button);
      return button;
    });
    buttons.forEach((b) => b.addEventListener("click", () => choose(Number(b.dataset.face), buttons)));
    if (buttons.length) choose(1, buttons); else status.textContent = "No face found in this photo.";
  }

  input.addEventListener("change", () => { if (input.files[0]) showFaces(input.files[0]); });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) { input.files = event.dataTransfer.files; showFaces(input.files[0]); }
  });
})();
