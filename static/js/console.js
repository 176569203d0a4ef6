// Butler Portal: a VM's serial console in the browser.
//
// The terminal (xterm.js, served from static/vendor/) talks to the portal's websocket
// /ws/tenants/<slug>/vms/<pk>/console/, which proxies KubeVirt's console: raw bytes both
// ways, in binary frames. The portal closes it with a code in the 4000 range and a reason
// when it cannot (4401 not signed in, 4403 no right to operate, 4404 gone, 4409 not running,
// 4502 KubeVirt refused). A refused handshake reaches the browser as 1006 with no reason, so
// that case says what usually causes it. The tenant's live channel (live.js) tells us when
// the VM stops or runs again: a closed console reconnects by itself when the VM is running.
// Once the session has ended (4401 here, or found by live.js) the page asks to sign in
// again (portal.js) and nothing reconnects: Reconnect only shows while that could help.
(function () {
  "use strict";

  const screen = document.getElementById("vm-console");
  if (!screen || !window.Terminal) return;

  const stateLine = document.querySelector("[data-console-state]");
  const label = document.querySelector("[data-console-label]");
  const reconnectButton = document.querySelector("[data-console-reconnect]");
  const vmId = Number(screen.dataset.vmId);
  const RUNNING = "running";
  const SIGNED_OUT = 4401;
  const REASONS = {
    4403: "You may not use this VM's console.",
    4404: "This VM no longer exists.",
    4409: "The VM is not running.",
    1006: "The connection was refused or lost. The portal may be unreachable, or your access may have changed.",
  };
  const SESSION_ENDED = "Your session has ended. Sign in again to use the console.";

  const terminal = new window.Terminal({
    cursorBlink: true,
    convertEol: false,
    scrollback: 5000,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    fontSize: 14,
  });
  const fit = window.FitAddon ? new window.FitAddon.FitAddon() : null;
  if (fit) terminal.loadAddon(fit);
  terminal.open(screen);
  if (fit) fit.fit();
  window.addEventListener("resize", function () { if (fit) fit.fit(); });

  const encoder = new TextEncoder();
  let socket = null;
  let vmState = screen.dataset.vmState;
  let sessionEnded = false;

  function show(state, text) {
    if (stateLine) stateLine.dataset.consoleState = state;
    if (label) label.textContent = text;
    if (reconnectButton) reconnectButton.hidden = state !== "closed";
  }

  // The session is over (this socket's 4401, or live.js found it): a console must not
  // outlive it, and reconnecting cannot help until the person signs in again.
  function endSession() {
    if (sessionEnded) return;
    sessionEnded = true;
    if (socket) socket.close(1000);
    show("ended", SESSION_ENDED);
    terminal.write("\r\n\x1b[2m[" + SESSION_ENDED + "]\x1b[0m\r\n");
    if (window.portalSessionEnded) window.portalSessionEnded();
  }

  function connect() {
    if (socket || sessionEnded) return;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    show("connecting", "Connecting…");
    socket = new WebSocket(scheme + "//" + window.location.host + screen.dataset.socketPath);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", function () {
      show("open", "Connected");
      terminal.focus();
    });
    socket.addEventListener("message", function (event) {
      terminal.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
    });
    socket.addEventListener("close", function (event) {
      socket = null;
      if (sessionEnded) return;
      if (event.code === SIGNED_OUT) {
        endSession();
        return;
      }
      const reason = event.reason || REASONS[event.code] || "The console session ended.";
      show("closed", "Disconnected: " + reason);
      terminal.write("\r\n\x1b[2m[" + reason + "]\x1b[0m\r\n");
    });
  }

  // Keystrokes (and pasted text) go out as raw bytes, like a serial line.
  terminal.onData(function (data) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });

  if (reconnectButton) reconnectButton.addEventListener("click", connect);

  document.body.addEventListener("portal:session-ended", endSession);

  document.body.addEventListener("portal:vm.changed", function (event) {
    const detail = event.detail || {};
    if (Number(detail.id) !== vmId || !detail.state) return;
    vmState = detail.state;
    if (sessionEnded) return;
    if (vmState === RUNNING) {
      connect();
    } else if (!socket) {
      show("closed", "The VM is " + vmState + ". The console opens when it runs.");
    }
  });

  if (screen.dataset.closedReason) {
    show("closed", screen.dataset.closedReason);
  } else if (vmState === RUNNING) {
    connect();
  }
})();
