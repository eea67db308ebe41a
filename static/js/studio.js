/* Small enhancements; every page works without them.
   - notices get a Dismiss button
   - "Copy" buttons copy the text of their target
   - the user menu closes on Escape or a click elsewhere
   - a form marked data-submit-once cannot be sent twice by a double click
   - after an htmx swap, focus moves where the trigger says (data-focus-after)
   - Studio: file uploads show their progress, and the job cannot be started
     while one is still on its way; progress bars and countdowns on job cards
     tick every second from the numbers the server gave, without requests;
     the cards follow their jobs through one poller that is never replaced */
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

  // --- Studio: uploads -------------------------------------------------------

  // A field shows its progress while its file is on the way; the response
  // replaces the whole field, so "uploading" is simply what the page shows.
  function uploadsPending() {
    return document.querySelectorAll("#new-job-form [data-upload-field].is-uploading").length;
  }

  function syncSubmit() {
    var button = document.querySelector("#new-job-form button[type=submit]");
    if (!button) return;
    var label = button.getAttribute("data-submit-label") || button.textContent;
    if (uploadsPending() > 0) {
      button.setAttribute("aria-disabled", "true");
      button.textContent = "Uploading…";
    } else if (!button.closest("form").dataset.sent) {
      button.removeAttribute("aria-disabled");
      button.textContent = label;
    }
  }

  function uploadField(elt) {
    return elt && elt.matches && elt.matches("[data-upload]") ? elt.closest("[data-upload-field]") : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var field = uploadField(event.detail.elt);
    if (!field) return;
    field.classList.add("is-uploading");
    var box = field.querySelector("[data-upload-progress]");
    if (box) box.hidden = false;
    syncSubmit();
  });

  // A file refused before the server read it (413: too large; 400: a name
  // too long to read) comes back with its field saying why: show it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (uploadField(trigger) && (status === 413 || status === 400)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    var field = uploadField(event.target);
    if (!field || !event.detail.lengthComputable) return;
    var percent = Math.floor((event.detail.loaded / event.detail.total) * 100);
    var bar = field.querySelector("[data-upload-progress] progress");
    var label = field.querySelector("[data-upload-percent]");
    if (bar) bar.value = percent;
    if (label) label.textContent = percent < 100 ? percent + "%" : "Checking the file…";
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    var field = uploadField(elt);
    if (field && !event.detail.successful && field.isConnected) {
      field.classList.remove("is-uploading");
      var box = field.querySelector("[data-upload-progress]");
      if (box) box.hidden = true;
      var help = field.querySelector(".field-help");
      if (help) help.textContent = "The upload did not finish. Check your connection and choose the file again.";
    }
    // A form whose request failed may be sent again.
    if (!event.detail.successful && elt && elt.tagName === "FORM" && elt.dataset.sent) {
      delete elt.dataset.sent;
      elt.querySelectorAll("button[aria-disabled]").forEach(function (b) { b.removeAttribute("aria-disabled"); });
    }
    syncSubmit();
  });
  document.addEventListener("htmx:afterSettle", syncSubmit);

  document.addEventListener("submit", function (event) {
    if (event.target.id === "new-job-form" && uploadsPending() > 0) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // --- Studio: progress bars and countdowns --------------------------------------

  function short(seconds) {
    seconds = Math.max(1, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes < 10 ? minutes + " min " + String(rest).padStart(2, "0") + " s" : minutes + " min";
  }

  function countdown(ms) {
    if (ms <= 0) return "a moment";  // overdue: the hourly purge is about to run
    var total = Math.floor(ms / 1000);
    var days = Math.floor(total / 86400);
    var h = Math.floor((total % 86400) / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var clock = String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
    return days > 0 ? days + " d " + clock : clock;
  }

  function tick() {
    var now = Date.now();
    // Bars are drawn from their value here, as a CSS property: the page's
    // Content-Security-Policy allows no style attribute in the markup.
    document.querySelectorAll(".progress[role=progressbar]:not([data-progress-start])").forEach(function (bar) {
      bar.style.setProperty("--progress", Number(bar.getAttribute("aria-valuenow")) + "%");
    });
    document.querySelectorAll("[data-progress-start]").forEach(function (bar) {
      var start = Number(bar.getAttribute("data-progress-start"));
      var expected = Number(bar.getAttribute("data-progress-expected")) || 1;
      var done = Math.min(1, Math.max(0, (now - start) / expected));
      var percent = 5 + Math.floor(done * 85);
      bar.style.setProperty("--progress", percent + "%");
      bar.setAttribute("aria-valuenow", String(percent));
      var label = bar.parentElement.querySelector("[data-progress-label]");
      if (label) {
        var left = (start + expected - now) / 1000;
        label.textContent = left > 0 ? "Rendering · about " + short(left) + " left" : "Rendering · taking longer than expected…";
      }
    });
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var until = Number(el.getAttribute("data-countdown"));
      el.textContent = countdown(until - now);
      var warnFrom = Number(el.getAttribute("data-warn-from"));
      var box = el.closest(".countdown");
      if (box && warnFrom) box.classList.toggle("countdown--warn", now >= warnFrom);
    });
  }

  // --- Studio: the cards' live updates --------------------------------------------
  // One poller element, never replaced, asks for the cards that changed since
  // its cursor (data-since): every 2 s while a job is live (data-polling), and
  // at once when an answer says a job was queued ("cards-poll"). It sends the
  // creation times of the newest and oldest card here, so the answer replaces
  // the cards this page holds and puts newer ones first (a job made here or
  // elsewhere). The cursor moves only once an answer has been applied: one
  // that failed is asked for again. Its requests queue one behind the other.
  var poller = document.getElementById("cards-poller");
  if (poller) {
    window.setInterval(function () {
      if (poller.dataset.polling === "1") htmx.trigger(document.body, "cards-poll");
    }, 2000);

    document.addEventListener("htmx:configRequest", function (event) {
      if (event.detail.elt !== poller) return;
      var created = [];
      document.querySelectorAll("#job-cards > .job-card[data-created]").forEach(function (card) {
        created.push(Number(card.getAttribute("data-created")));
      });
      var params = event.detail.parameters;
      params.since = poller.dataset.since;
      if (created.length) {
        params.newest = Math.max.apply(null, created);
        params.oldest = Math.min.apply(null, created);
      }
    });

    document.addEventListener("htmx:afterRequest", function (event) {
      if (event.detail.elt !== poller || !event.detail.successful) return;
      var xhr = event.detail.xhr;
      var since = xhr.getResponseHeader("X-Cards-Since");
      if (since) poller.dataset.since = since;
      poller.dataset.polling = xhr.getResponseHeader("X-Cards-Polling") === "1" ? "1" : "0";
    });
  }

  // The Studio's cards, and the gallery's countdowns to deletion.
  if (document.querySelector("#job-cards, [data-countdown]")) {
    tick();
    window.setInterval(tick, 1000);
    document.addEventListener("htmx:afterSettle", tick);
  }

  reveal(document);
})();

/* Gallery: videos play in place. Hovering an item (with a mouse, unless the
   member prefers less motion) plays a silent looping preview; the play button
   plays it with sound and controls, pausing any other. Without JavaScript the
   play button opens the item's page. "Load more" keeps keyboard focus. */
(function () {
  "use strict";

  var hoverable = window.matchMedia("(hover: hover) and (pointer: fine)");
  var calm = window.matchMedia("(prefers-reduced-motion: reduce)");
  var HOVER_DELAY = 180;

  function videoOf(media) {
    var video = media.querySelector("video");
    if (!video) {
      video = document.createElement("video");
      video.src = media.getAttribute("data-video");
      video.playsInline = true;
      video.preload = "auto";
      video.setAttribute("aria-label", media.getAttribute("data-label") || "Video");
      var poster = media.querySelector("img");
      if (poster) video.poster = poster.currentSrc || poster.src;
      media.appendChild(video);
    }
    return video;
  }

  function stopPreview(media) {
    if (media.classList.contains("is-playing")) return;
    media.classList.remove("is-previewing");
    var video = media.querySelector("video");
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
    var video = videoOf(media);
    video.muted = true;
    video.loop = true;
    var started = video.play();
    if (started && started.catch) started.catch(function () { stopPreview(media); });
  }

  function pauseOthers(except) {
    document.querySelectorAll("[data-gallery-media].is-playing video").forEach(function (v) {
      if (v !== except) v.pause();
    });
  }

  function play(media) {
    media.classList.remove("is-previewing");
    media.classList.add("is-playing");
    var video = videoOf(media);
    video.loop = false;
    video.muted = false;
    video.controls = true;
    video.currentTime = 0;
    pauseOthers(video);
    var started = video.play();
    if (started && started.catch) started.catch(function () { /* the controls stay */ });
    video.focus({ preventScroll: true });
  }

  var timers = new WeakMap();
  document.addEventListener("mouseenter", function (event) {
    var media = event.target;
    if (!media.matches || !media.matches("[data-gallery-media]")) return;
    if (!hoverable.matches || calm.matches) return;
    timers.set(media, window.setTimeout(function () { preview(media); }, HOVER_DELAY));
  }, true);
  document.addEventListener("mouseleave", function (event) {
    var media = event.target;
    if (!media.matches || !media.matches("[data-gallery-media]")) return;
    window.clearTimeout(timers.get(media));
    stopPreview(media);
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-gallery-play]");
    if (!button) return;
    var media = button.closest("[data-gallery-media]");
    if (!media) return;
    event.preventDefault();
    play(media);
  });
  // Any video starting (one item's controls, say) pauses the others.
  document.addEventListener("play", function (event) {
    if (event.target.closest && event.target.closest("[data-gallery-media].is-playing")) {
      pauseOthers(event.target);
    }
  }, true);

  // "Load more" is replaced by the next items: if it had the focus, the
  // first new item's link takes it, so a keyboard user carries on from there.
  var before = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.matches || !elt.matches("[data-gallery-more]")) return;
    before = {
      count: document.querySelectorAll("#gallery-grid > .gallery-item").length,
      focused: document.activeElement === elt,
    };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!before) return;
    var state = before;
    before = null;
    if (!state.focused) return;
    var items = document.querySelectorAll("#gallery-grid > .gallery-item");
    var first = items[state.count] && items[state.count].querySelector(".gallery-title a");
    if (first) first.focus();
  });
})();
