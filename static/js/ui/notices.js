/* Notices (Django messages) get a Dismiss button; dismissing one puts the
   focus back on the page's main content. Every page loads this. */

const BUTTONS = "[data-dismiss][hidden]";

function reveal(root) {
  root.querySelectorAll(BUTTONS).forEach((button) => { button.hidden = false; });
}

document.addEventListener("click", (event) => {
  const dismiss = event.target.closest("[data-dismiss]");
  if (!dismiss) return;
  const notice = dismiss.closest(".notice");
  const list = notice && notice.parentElement;
  if (notice) notice.remove();
  if (list && list.classList.contains("notices") && !list.children.length) list.remove();
  const main = document.getElementById("main");
  if (main) main.focus();
});

document.addEventListener("htmx:afterSettle", (event) => {
  reveal(event.target && event.target.isConnected ? event.target : document);
});

reveal(document);
