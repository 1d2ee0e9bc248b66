// Administration page: while a crawl or an import is queued or running, refresh the jobs' progress every second.
"use strict";
(() => {
  const table = document.getElementById("jobs");
  if (!table) return;
  const active = (state) => state === "queued" || state === "running";
  const fields = ["pages", "images_fetched", "new_images", "faces", "errors"];

  async function refresh() {
    const response = await fetch("/admin/jobs.json", { credentials: "same-origin" });
    if (!response.ok) return;
    const jobs = await response.json();
    let running = false;
    for (const job of jobs) {
      const row = table.querySelector(`tr[data-job="${job.id}"]`);
      if (!row) { window.location.reload(); return; }
      row.querySelector(".state").textContent = job.state;
      for (const name of fields) row.querySelector(`.${name}`).textContent = String(job.progress[name]);
      if (job.progress.images_total !== null) {
        row.querySelector(".images_fetched").textContent += ` of ${job.progress.images_total}`;
      }
      if (!active(job.state)) row.querySelector("form")?.remove();
      running = running || active(job.state);
    }
    if (running) setTimeout(refresh, 1000);
  }

  const states = [...table.querySelectorAll("td.state")].map((cell) => cell.textContent.trim());
  if (states.some(active)) setTimeout(refresh, 1000);
})();
