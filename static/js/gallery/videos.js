/* Gallery: videos play in place. Hovering an item (with a mouse, unless the
   member prefers less motion) plays a silent looping preview; the play button
   plays it with sound and controls, pausing any other. Without JavaScript the
   play button opens the item's page. "Load more" keeps keyboard focus. */

const hoverable = window.matchMedia("(hover: hover) and (pointer: fine)");
const calm = window.matchMedia("(prefers-reduced-motion: reduce)");
const HOVER_DELAY = 180;
const MEDIA = "[data-gallery-media]";

function videoOf(media) {
  let video = media.querySelector("video");
  if (!video) {
    video = document.createElement("video");
    video.src = media.getAttribute("data-video");
    video.playsInline = true;
    video.preload = "auto";
    video.setAttribute("aria-label", media.getAttribute("data-label") || "Video");
    const poster = media.querySelector("img");
    if (poster) video.poster = poster.currentSrc || poster.src;
    media.appendChild(video);
  }
  return video;
}

function stopPreview(media) {
  if (media.classList.contains("is-playing")) return;
  media.classList.remove("is-previewing");
  const video = media.querySelector("video");
  if (video) {
    video.pause();
    video.removeAttribute("src");
    video.load(); // lets the browser drop the connection
    video.remove();
  }
}

function preview(media) {
  if (media.classList.contains("is-playing")) return;
  media.classList.add("is-previewing");
  const video = videoOf(media);
  video.muted = true;
  video.loop = true;
  const started = video.play();
  if (started && started.catch) started.catch(() => stopPreview(media));
}

function pauseOthers(except) {
  document.querySelectorAll(`${MEDIA}.is-playing video`).forEach((video) => {
    if (video !== except) video.pause();
  });
}

function play(media) {
  media.classList.remove("is-previewing");
  media.classList.add("is-playing");
  const video = videoOf(media);
  video.loop = false;
  video.muted = false;
  video.controls = true;
  video.currentTime = 0;
  pauseOthers(video);
  const started = video.play();
  if (started && started.catch) started.catch(() => { /* the controls stay */ });
  video.focus({ preventScroll: true });
}

const timers = new WeakMap();
document.addEventListener("mouseenter", (event) => {
  const media = event.target;
  if (!media.matches || !media.matches(MEDIA)) return;
  if (!hoverable.matches || calm.matches) return;
  timers.set(media, window.setTimeout(() => preview(media), HOVER_DELAY));
}, true);
document.addEventListener("mouseleave", (event) => {
  const media = event.target;
  if (!media.matches || !media.matches(MEDIA)) return;
  window.clearTimeout(timers.get(media));
  stopPreview(media);
}, true);

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-gallery-play]");
  if (!button) return;
  const media = button.closest(MEDIA);
  if (!media) return;
  event.preventDefault();
  play(media);
});
// Any video starting (one item's controls, say) pauses the others.
document.addEventListener("play", (event) => {
  if (event.target.closest && event.target.closest(`${MEDIA}.is-playing`)) pauseOthers(event.target);
}, true);

// "Load more" is replaced by the next items: if it had the focus, the
// first new item's link takes it, so a keyboard user carries on from there.
let before = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (!elt.matches || !elt.matches("[data-gallery-more]")) return;
  before = {
    count: document.querySelectorAll("#gallery-grid > .gallery-item").length,
    focused: document.activeElement === elt,
  };
});
document.addEventListener("htmx:afterSettle", () => {
  if (!before) return;
  const state = before;
  before = null;
  if (!state.focused) return;
  const items = document.querySelectorAll("#gallery-grid > .gallery-item");
  const first = items[state.count] && items[state.count].querySelector(".gallery-title a");
  if (first) first.focus();
});
