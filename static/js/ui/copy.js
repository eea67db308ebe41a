/* "Copy" buttons (data-copy="#target") copy the text of their target, and
   say so in the nearest [data-copy-status]; without the clipboard API the
   text is selected for Ctrl+C. The buttons are hidden until this runs. */

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function copy(button) {
  const target = document.querySelector(button.getAttribute("data-copy"));
  if (!target) return;
  const text = target.textContent.trim();
  const status =
    button.closest("section, form, div").querySelector("[data-copy-status]") ||
    document.querySelector("[data-copy-status]");
  const label = button.querySelector("[data-copy-label]");
  const done = (ok) => {
    if (status) {
      status.textContent = ok
        ? "Copied to the clipboard."
        : "Press Ctrl+C (or ⌘C) to copy the selected key.";
    }
    if (label && ok) {
      label.textContent = "Copied";
      window.setTimeout(() => { label.textContent = "Copy"; }, 2500);
    }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(
      () => done(true),
      () => { selectText(target); done(false); },
    );
  } else {
    selectText(target);
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  }
}

function reveal(root) {
  root.querySelectorAll("[data-copy][hidden]").forEach((button) => { button.hidden = false; });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (button) copy(button);
});

document.addEventListener("htmx:afterSettle", (event) => {
  reveal(event.target && event.target.isConnected ? event.target : document);
});

reveal(document);
