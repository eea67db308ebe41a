/* Told when it's done. The tab's title counts the live jobs ("(2) Studio …"),
   and, once the member has said yes (the "Notify me" button: the browser
   asks only after that click, never unprompted), a job that finishes or
   fails while the page is in another tab raises a browser notification.
   Cards change through the poller's swaps; an observer on the grid sees
   each one and compares its state with the one it had. */

const grid = document.getElementById("job-cards");
const toggle = document.getElementById("notify-toggle");
const LIVE = new Set(["queued", "submitting", "processing", "archiving"]);
const ENDED = new Set(["completed", "failed"]);
const baseTitle = document.title;
const seen = new Map(); // card id -> state last seen

function stateOf(card) {
  const found = /(?:^|\s)job-card--([a-z]+)/.exec(card.className);
  return found ? found[1] : "";
}

function canNotify() {
  return "Notification" in window && Notification.permission === "granted";
}

function notify(card, state) {
  if (!canNotify() || document.visibilityState === "visible") return;
  const title = (card.querySelector("h3")?.textContent || "A job").replace(/\s+/g, " ").trim();
  const error = card.querySelector(".job-error")?.textContent.trim();
  const note = new Notification(state === "completed" ? `Ready: ${title}` : `Failed: ${title}`, {
    body: state === "completed" ? "The video plays in the Studio." : error || "Its credits were released.",
    tag: card.id,
    icon: toggle?.dataset.icon || undefined,
  });
  note.addEventListener("click", () => {
    window.focus();
    document.getElementById(card.id)?.scrollIntoView({ block: "center" });
    note.close();
  });
}

function scan(announce) {
  let live = 0;
  grid.querySelectorAll(":scope > .job-card").forEach((card) => {
    const state = stateOf(card);
    if (LIVE.has(state)) live += 1;
    const before = seen.get(card.id);
    if (announce && LIVE.has(before) && ENDED.has(state)) notify(card, state);
    seen.set(card.id, state);
  });
  document.title = live ? `(${live}) ${baseTitle}` : baseTitle;
}

function showToggle() {
  if (!toggle) return;
  toggle.hidden = !("Notification" in window) || Notification.permission !== "default";
}

if (grid) {
  scan(false);
  new MutationObserver(() => scan(true)).observe(grid, { childList: true, subtree: true });
  showToggle();
  toggle?.addEventListener("click", async () => {
    await Notification.requestPermission();
    showToggle();
  });
}
