// waflow console: live timelines (server-sent events) and the QR page's
// refresh. No inline scripts: the page's Content-Security-Policy forbids them.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const timeline = document.querySelector("#timeline[data-live]");
  if (timeline && window.EventSource) {
    const source = new EventSource(timeline.dataset.live);
    let busy = false;
    source.addEventListener("change", async () => {
      if (busy) return;
      busy = true;
      try {
        const answer = await fetch(timeline.dataset.src, { credentials: "same-origin" });
        if (answer.ok) timeline.innerHTML = await answer.text();
      } finally {
        busy = false;
      }
    });
  }
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    setTimeout(() => window.location.reload(), Number(refresh.dataset.refresh) || 5000);
  }
});
