/* Small enhancements; every page works without them.
   - notices get a Dismiss button
   - "Copy" buttons copy the text of their target
   - the user menu closes on Escape or a click elsewhere
   - a form marked data-submit-once cannot be sent twice by a double click
   - after an htmx swap, focus moves where the trigger says (data-focus-after) */
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("[data-dismiss][hidden], [data-copy][hidden]").forEach(function (el) {
      el.hidden = false;
    });
  }

  function closeMenus(except) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent.trim();
    var status = button.closest("section, form, div").querySelector("[data-copy-status]") ||
      document.querySelector("[data-copy-status]");
    var label = button.querySelector("[data-copy-label]");
    function done(ok) {
      if (status) status.textContent = ok ? "Copied to the clipboard." : "Press Ctrl+C (or ⌘C) to copy the selected key.";
      if (label && ok) {
        label.textContent = "Copied";
        window.setTimeout(function () { label.textContent = "Copy"; }, 2500);
      }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () {
        selectText(target);
        done(false);
      });
    } else {
      selectText(target);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
  }

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      var notice = dismiss.closest(".notice");
      var list = notice && notice.parentElement;
      if (notice) notice.remove();
      if (list && list.classList.contains("notices") && !list.children.length) list.remove();
      var main = document.getElementById("main");
      if (main) main.focus();
      return;
    }
    var copyButton = event.target.closest("[data-copy]");
    if (copyButton) {
      copy(copyButton);
      return;
    }
    closeMenus(event.target.closest("details.user-menu"));
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-submit-once")) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.setAttribute("aria-disabled", "true");
    });
  });
  // Coming back to the page from the history: the form may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
      form.querySelectorAll("button[aria-disabled]").forEach(function (b) {
        b.removeAttribute("aria-disabled");
      });
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.user-menu[open]");
    if (!open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    reveal(event.target && event.target.isConnected ? event.target : document);
    var trigger = event.detail && (event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt);
    var selector = trigger && trigger.getAttribute && trigger.getAttribute("data-focus-after");
    if (selector) {
      var el = document.querySelector(selector);
      if (el) el.focus({ preventScroll: true });
    }
  });

  reveal(document);
})();
