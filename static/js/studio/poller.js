/* The Studio cards' live updates. One poller element (#cards-poller), never
   replaced, asks for the cards that changed since its cursor (data-since):
   while a job is live (data-polling), every data-slow-ms (2 s); every
   data-fast-ms (1 s) while one of its cards is inside its predicted finish
   window (data-finish-from to data-finish-until, epoch ms: when the provider
   most likely finishes it); every data-fastest-ms (0.5 s) while a card is
   archiving, or inside its window with a provider that calls back
   (data-webhooks: the webhook moves the job on at once, so the page's
   interval is most of what is left before the video shows). Those moments
   cost cheap "nothing changed" answers. It also asks at once when an answer
   says a job was queued ("cards-poll"). It sends the creation times of the
   newest and oldest card here, so the answer replaces the cards this page
   holds and puts newer ones first (a job made here or elsewhere). The cursor
   moves only once an answer has been applied (its swap: out of band only):
   one that failed is asked for again. Its requests queue one behind the other,
   and with a card's own actions (#job-cards' hx-sync); the poller queues
   first, so a queued action is never dropped for another ask. */

const poller = document.getElementById("cards-poller");

/* The intervals (ms) come from the page (jobs/studio/cards.py CARDS_POLL). */
function every(name, fallback) {
  const ms = Number(poller.dataset[name]);
  return ms > 0 ? ms : fallback;
}

/* The interval that applies now: the fastest while a card is archiving or
   inside the finish window of a provider that calls back, the fast one while
   one is inside its window, else the slow one. */
function interval(now, { slow, fast, fastest }) {
  if (document.querySelector("#job-cards > .job-card--archiving")) return fastest;
  const inside = Array.from(
    document.querySelectorAll("#job-cards > .job-card[data-finish-from]"),
  ).filter(
    (card) =>
      Number(card.getAttribute("data-finish-from")) <= now &&
      now <= Number(card.getAttribute("data-finish-until")),
  );
  if (inside.some((card) => card.hasAttribute("data-webhooks"))) return fastest;
  return inside.length ? fast : slow;
}

if (poller) {
  const intervals = {
    slow: every("slowMs", 2000),
    fast: every("fastMs", 1000),
    fastest: every("fastestMs", 500),
  };
  const tick = Math.min(intervals.slow, intervals.fast, intervals.fastest);
  let lastAsk = Date.now();
  window.setInterval(() => {
    if (poller.dataset.polling !== "1") return;
    const now = Date.now();
    // Within a fifth of a tick counts: timers fire a little early or late.
    if (now - lastAsk < interval(now, intervals) - tick / 5) return;
    lastAsk = now;
    htmx.trigger(document.body, "cards-poll");
  }, tick);

  poller.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.elt !== poller) return;
    const created = Array.from(
      document.querySelectorAll("#job-cards > .job-card[data-created]"),
      (card) => Number(card.getAttribute("data-created")),
    );
    const params = event.detail.parameters;
    params.since = poller.dataset.since;
    // The card ticket (data-ticket, renewed by answers): its pass to the
    // server's cheap "nothing changed" (jobs/studio/card_tickets.py).
    if (poller.dataset.ticket) event.detail.headers["X-Cards-Ticket"] = poller.dataset.ticket;
    if (created.length) {
      params.newest = Math.max(...created);
      params.oldest = Math.min(...created);
    }
  });

  poller.addEventListener("htmx:afterSwap", (event) => {
    if (event.target !== poller) return;
    const xhr = event.detail.xhr;
    const since = xhr && xhr.getResponseHeader("X-Cards-Since");
    if (!since) return; // not an answer to this question
    const ticket = xhr.getResponseHeader("X-Cards-Ticket");
    if (ticket) poller.dataset.ticket = ticket;
    poller.dataset.since = since;
    poller.dataset.polling = xhr.getResponseHeader("X-Cards-Polling") === "1" ? "1" : "0";
  });
}
