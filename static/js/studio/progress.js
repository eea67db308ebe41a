/* Progress bars on the Studio's job cards. A bar is drawn from its value as
   a CSS property (the Content-Security-Policy allows no style attribute); a
   job rendering at the provider (data-progress-start, -expected) moves every
   second from those numbers, without requests, and its label says how long
   is left. progressAt is the same formula as progress_at in
   jobs/studio/cards.py, which draws the card first (a test compares them). */

// Half rounds up, as Python's progress_at does it (not to even).
export function short(seconds) {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  return minutes < 10 ? `${minutes} min ${String(rest).padStart(2, "0")} s` : `${minutes} min`;
}

// start and now in epoch ms, expected in ms: {percent, label}.
export function progressAt(start, expected, now) {
  const span = Math.max(expected, 1);
  const done = Math.min(1, Math.max(0, (now - start) / span));
  const left = (start + span - now) / 1000;
  return {
    percent: 5 + Math.floor(done * 85),
    label: left > 0 ? `Rendering · about ${short(left)} left` : "Rendering · taking longer than expected…",
  };
}

function tick() {
  const now = Date.now();
  document.querySelectorAll(".progress[role=progressbar]:not([data-progress-start])").forEach((bar) => {
    bar.style.setProperty("--progress", `${Number(bar.getAttribute("aria-valuenow"))}%`);
  });
  document.querySelectorAll("[data-progress-start]").forEach((bar) => {
    const start = Number(bar.getAttribute("data-progress-start"));
    const expected = Number(bar.getAttribute("data-progress-expected")) || 1;
    const { percent, label } = progressAt(start, expected, now);
    bar.style.setProperty("--progress", `${percent}%`);
    bar.setAttribute("aria-valuenow", String(percent));
    const text = bar.parentElement.querySelector("[data-progress-label]");
    if (text) text.textContent = label;
  });
  // "Stop waiting" appears once a job is overdue (cards.py's stop_from).
  document.querySelectorAll("[data-reveal-at][hidden]").forEach((element) => {
    if (now >= Number(element.getAttribute("data-reveal-at"))) element.hidden = false;
  });
}

tick();
window.setInterval(tick, 1000);
document.addEventListener("htmx:afterSettle", tick);
