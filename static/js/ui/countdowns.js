/* Countdowns to a deadline (<time data-countdown="epoch ms">) tick every
   second from the moment the server gave, without requests, and turn to the
   warning colour from data-warn-from. The Studio's cards and the gallery. */

export function countdownText(ms) {
  if (ms <= 0) return "a moment"; // overdue: the hourly purge is about to run
  const total = Math.floor(ms / 1000);
  const days = Math.floor(total / 86400);
  const two = (n) => String(n).padStart(2, "0");
  const clock = `${two(Math.floor((total % 86400) / 3600))}:${two(Math.floor((total % 3600) / 60))}:${two(total % 60)}`;
  return days > 0 ? `${days} d ${clock}` : clock;
}

function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-countdown]").forEach((el) => {
    el.textContent = countdownText(Number(el.getAttribute("data-countdown")) - now);
    const warnFrom = Number(el.getAttribute("data-warn-from"));
    const box = el.closest(".countdown");
    if (box && warnFrom) box.classList.toggle("countdown--warn", now >= warnFrom);
  });
}

tick();
window.setInterval(tick, 1000);
document.addEventListener("htmx:afterSettle", tick);
