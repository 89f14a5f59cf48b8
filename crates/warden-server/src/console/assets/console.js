// Warden console: live updates where they help. Every page works without this script; it only
// follows the Server-Sent Events stream a page names and adds new rows as they are recorded.
"use strict";

(function () {
  const feed = document.querySelector("[data-live]");
  if (!feed || !window.EventSource) {
    return;
  }
  const body = feed.querySelector("tbody");
  const status = document.getElementById("live-status");
  // The newest page shows at most this many rows; older ones are a page away.
  const keep = Number(feed.dataset.keep || "50");
  const say = (text) => {
    if (status) {
      status.textContent = text;
    }
  };

  const cell = (text) => {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  };

  const row = (r) => {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    const seq = cell(r.seq);
    seq.className = "num";
    tr.append(seq, cell(r.time), cell(r.category), cell(r.actor), cell(r.verb),
      cell(r.resource), cell(r.target));
    const decision = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "decision " + (r.allowed ? "decision-allow" : "decision-deny");
    badge.textContent = r.allowed ? "allow" : "deny";
    decision.append(badge);
    tr.append(decision, cell(r.status));
    return tr;
  };

  const source = new EventSource(feed.dataset.live);
  source.addEventListener("open", () => say("Live: new events appear at the top as they are recorded."));
  source.addEventListener("error", () => say("Live updates interrupted; reconnecting…"));
  source.addEventListener("event", (message) => {
    const empty = body.querySelector("tr.empty");
    if (empty) {
      empty.remove();
    }
    body.prepend(row(JSON.parse(message.data)));
    while (body.rows.length > keep) {
      body.lastElementChild.remove();
    }
  });
})();
