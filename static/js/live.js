// Butler Portal live updates.
//
// On tenant pages (<body data-live-url="/ws/tenants/<slug>/">) this opens the tenant's
// websocket and turns each server event {kind, id, ...} into a DOM event on <body>:
//
//   portal:<kind>   e.g. portal:cluster, portal:vm, portal:quota  (detail = the event)
//   portal:event    every event, whatever its kind
//   portal:resync   after a reconnect: events may have been missed, refresh everything
//
// Elements opt in with htmx, re-fetching themselves through the normal views:
//   <div id="clusters" hx-get="..." hx-trigger="portal:cluster from:body, portal:resync from:body">
// An event carrying a "toast" string also shows it as a notification.
(function () {
  "use strict";

  const url = document.body && document.body.dataset.liveUrl;
  if (!url || !("WebSocket" in window)) return;

  const PING_INTERVAL_MS = 25000;
  const FIRST_RETRY_MS = 1000;
  const MAX_RETRY_MS = 30000;
  // Close codes the server uses for "do not retry": signed out, or no access any more. A
  // refused or lost connection is 1006 whatever the reason, so the server says "signed out"
  // after accepting (4401), also when a ping finds that the session has ended since.
  const SIGNED_OUT = 4401;
  const FINAL_CLOSE_CODES = { 4401: "Signed out", 4403: "No access", 4404: "No access" };

  const indicator = document.getElementById("live-status");
  let socket = null;
  let retryDelay = FIRST_RETRY_MS;
  let pingTimer = null;
  let retryTimer = null;
  let hadConnection = false;
  let lastCloseCode = null;
  let sessionEnded = false;

  function show(state, label) {
    if (!indicator) return;
    indicator.dataset.state = state;
    const text = indicator.querySelector(".live-label");
    if (text) text.textContent = label;
  }

  function emit(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { bubbles: true, detail: detail }));
  }

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + url;
  }

  function ping() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ kind: "ping" }));
  }

  function connect() {
    show("connecting", hadConnection ? "Reconnecting…" : "Connecting…");
    socket = new WebSocket(socketUrl());

    socket.addEventListener("open", function () {
      retryDelay = FIRST_RETRY_MS;
      show("live", "Live");
      if (hadConnection) emit("portal:resync", {});
      hadConnection = true;
      clearInterval(pingTimer);
      pingTimer = setInterval(ping, PING_INTERVAL_MS);
    });

    socket.addEventListener("message", function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (!event || typeof event.kind !== "string" || event.kind === "pong" || event.kind === "hello") return;
      emit("portal:" + event.kind, event);
      emit("portal:event", event);
      if (typeof event.toast === "string" && window.portalToast) {
        window.portalToast(event.level || "info", event.toast);
      }
    });

    socket.addEventListener("close", function (closed) {
      clearInterval(pingTimer);
      lastCloseCode = sessionEnded ? SIGNED_OUT : closed.code;
      if (FINAL_CLOSE_CODES[lastCloseCode]) {
        show("offline", FINAL_CLOSE_CODES[lastCloseCode]);
        if (lastCloseCode === SIGNED_OUT && window.portalSessionEnded) window.portalSessionEnded();
        return;
      }
      show("offline", "Offline, retrying");
      // Exponential backoff with jitter, so a restarted server is not hit by every tab at once.
      const wait = retryDelay * (0.75 + Math.random() * 0.5);
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
      retryTimer = setTimeout(connect, wait);
    });
  }

  // A tab coming back from the background reconnects at once instead of waiting out the
  // backoff, or pings at once: the session may have ended while nobody looked.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !socket) return;
    if (socket.readyState === WebSocket.OPEN) {
      ping();
    } else if (socket.readyState === WebSocket.CLOSED && !FINAL_CLOSE_CODES[lastCloseCode]) {
      clearTimeout(retryTimer);
      retryDelay = FIRST_RETRY_MS;
      connect();
    }
  });

  // Something else on the page (the console, an htmx request) found the session over first.
  document.body.addEventListener("portal:session-ended", function () {
    sessionEnded = true;
    clearTimeout(retryTimer);
    if (socket && socket.readyState !== WebSocket.CLOSED) socket.close(1000);
    show("offline", FINAL_CLOSE_CODES[SIGNED_OUT]);
  });

  connect();
})();
