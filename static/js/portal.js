// Butler Portal: small progressive enhancements. Every page works without this file;
// with it, confirmations open in a dialog, secrets copy with one click, toasts go away
// by themselves and menus close like menus.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  const TOAST_LIFETIME_MS = 6000;
  const ICONS_URL = (function () {
    const icon = document.querySelector("use[href*='icons.svg']");
    return icon ? icon.getAttribute("href").split("#")[0] : "/static/icons.svg";
  })();

  // --- Toasts ------------------------------------------------------------------------------
  function dismissToast(toast) {
    toast.classList.add("is-leaving");
    setTimeout(function () { toast.remove(); }, 220);
  }

  function scheduleDismissal(toast) {
    // Errors stay until dismissed: they usually need reading twice.
    if (toast.dataset.scheduled || toast.classList.contains("toast-error")) return;
    toast.dataset.scheduled = "1";
    setTimeout(function () { if (toast.isConnected) dismissToast(toast); }, TOAST_LIFETIME_MS);
  }

  function scheduleAllToasts() {
    document.querySelectorAll("#toasts .toast").forEach(scheduleDismissal);
  }

  function icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", ICONS_URL + "#" + name);
    svg.appendChild(use);
    return svg;
  }

  // portalToast("success" | "info" | "warning" | "error", text): for live events.
  window.portalToast = function (level, text) {
    const region = document.getElementById("toasts");
    if (!region) return;
    const toast = document.createElement("div");
    toast.className = "toast toast-" + level;
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    toast.appendChild(icon(level === "success" ? "check-circle" : level === "info" ? "info" : "alert"));
    const body = document.createElement("p");
    body.textContent = text;
    toast.appendChild(body);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss notification");
    close.dataset.dismissToast = "";
    close.appendChild(icon("x"));
    toast.appendChild(close);
    region.appendChild(toast);
    scheduleDismissal(toast);
  };

  // --- Modal dialog ------------------------------------------------------------------------
  function modal() { return document.getElementById("modal"); }

  function closeModal() {
    const dialog = modal();
    if (dialog && dialog.open) dialog.close();
  }

  // --- Copy to clipboard -------------------------------------------------------------------
  function copyFrom(button) {
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined ? source.value : source.textContent;
    const label = button.querySelector("[data-copy-label]");
    const done = function () {
      if (label) {
        label.textContent = "Copied";
        setTimeout(function () { label.textContent = "Copy"; }, 2000);
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectAndCopy(source, done); });
    } else {
      selectAndCopy(source, done);
    }
  }

  function selectAndCopy(source, done) {
    // Plain-HTTP deployments have no async clipboard API: fall back to a selection.
    source.focus();
    if (source.select) source.select();
    try { if (document.execCommand("copy")) done(); } catch (error) { /* the text stays selected */ }
  }

  // --- Tenant slug from its name (operator console) ---------------------------------------
  function slugify(text) {
    return text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-").replace(/^[^a-z]+/, "").replace(/-+$/, "").slice(0, 40)
      .replace(/-+$/, "");
  }

  function wireSlugField() {
    const slug = document.querySelector("[data-slug-target] input");
    const name = document.getElementById("id_name");
    if (!slug || !name) return;
    let touched = slug.value !== "";
    slug.addEventListener("input", function () { touched = slug.value !== ""; });
    name.addEventListener("input", function () { if (!touched) slug.value = slugify(name.value); });
  }

  // --- The end of a session, and requests that fail ---------------------------------------
  // live.js and console.js (their sockets close with 4401) and htmx requests sent to the
  // login page all end here: the page stays as it is and says to sign in again, coming back
  // to this page afterwards.
  function loginPath() {
    const link = document.querySelector("[data-session-ended] [data-sign-in]");
    return link ? new URL(link.href, window.location.href).pathname : null;
  }

  window.portalSessionEnded = function () {
    const banner = document.querySelector("[data-session-ended]");
    if (!banner || !banner.hidden) return;
    const link = banner.querySelector("[data-sign-in]");
    link.href = loginPath() + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    banner.hidden = false;
    document.body.dispatchEvent(new CustomEvent("portal:session-ended", { bubbles: true }));
  };

  function goesToLogin(xhr) {
    const login = loginPath();
    if (!login) return false;
    const redirect = xhr.getResponseHeader("HX-Redirect");
    // A plain redirect is followed inside the request: the login page would land in a fragment.
    const target = redirect || xhr.responseURL;
    return Boolean(target) && new URL(target, window.location.href).pathname === login;
  }

  function isPlainText(xhr) {
    return (xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0;
  }

  // Capturing on window runs before every listener on the document: with DEBUG on,
  // django-htmx's would replace the whole page with the response of a failed request.
  window.addEventListener("htmx:beforeOnLoad", function (event) {
    const xhr = event.detail.xhr;
    if (goesToLogin(xhr)) {
      event.preventDefault();
      event.stopPropagation();
      window.portalSessionEnded();
    } else if (xhr.status >= 400 && isPlainText(xhr)) {
      event.stopPropagation();  // the portal's one sentence: a toast says it (below)
    }
  }, true);

  const REQUEST_FAILED = {
    403: "You are not allowed to do this.",
    404: "This is no longer here: it may have been deleted.",
  };

  function toastOnce(level, text) {
    const shown = Array.prototype.some.call(document.querySelectorAll("#toasts .toast p"), function (p) {
      return p.textContent === text;
    });
    if (!shown) window.portalToast(level, text);
  }

  document.addEventListener("htmx:responseError", function (event) {
    const xhr = event.detail.xhr;
    const said = isPlainText(xhr) ? xhr.responseText.trim().slice(0, 300) : "";
    toastOnce("error", said || REQUEST_FAILED[xhr.status] ||
      "Something went wrong on our side. Please try again in a moment.");
  });

  document.addEventListener("htmx:sendError", function () {
    toastOnce("error", "The portal could not be reached. Check your connection and try again.");
  });

  // --- Forms that are being sent ----------------------------------------------------------
  // Once a form is submitted, the requests of its parts (a create form's quota preview, its
  // key choices) are not sent any more: their answer would not be shown, and one still on its
  // way when the next page loads is aborted, which the console reports as an error. htmx asks
  // htmx:confirm before it queues a request, so a cancelled one leaves no trace. The form may
  // send again once its answer came back in place (a refusal on a field).
  document.addEventListener("submit", function (event) {
    if (event.target instanceof HTMLFormElement) event.target.dataset.sending = "";
  }, true);

  document.addEventListener("htmx:confirm", function (event) {
    const elt = event.detail.elt;
    const form = elt instanceof Element ? elt.closest("form[data-sending]") : null;
    if (form && form !== elt) event.preventDefault();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    const elt = event.detail.elt;
    const xhr = event.detail.xhr;
    if (elt instanceof HTMLFormElement && !(xhr && xhr.getResponseHeader("HX-Redirect"))) {
      delete elt.dataset.sending;
    }
  });

  // --- Event wiring ------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof Element)) return;

    const dismiss = target.closest("[data-dismiss-toast]");
    if (dismiss) { dismissToast(dismiss.closest(".toast")); return; }

    const copy = target.closest("[data-copy]");
    if (copy) { copyFrom(copy); return; }

    const cancel = target.closest("[data-close-modal]");
    if (cancel && cancel.closest("#modal")) { event.preventDefault(); closeModal(); return; }

    // Menus close when you click anywhere else.
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (!menu.contains(target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      menu.removeAttribute("open");
      const summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });

  document.addEventListener("focusin", function (event) {
    const target = event.target;
    if ((target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) &&
        target.hasAttribute("data-select-on-focus")) {
      target.select();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const dialog = modal();
    if (dialog && event.detail.target && event.detail.target.id === "modal-body") {
      if (!dialog.open) dialog.showModal();
      const first = dialog.querySelector("input:not([type=hidden]), button[type=submit]");
      if (first) first.focus();
    }
    scheduleAllToasts();
  });

  document.addEventListener("htmx:oobAfterSwap", scheduleAllToasts);

  document.addEventListener("DOMContentLoaded", function () {
    const dialog = modal();
    if (dialog) {
      dialog.addEventListener("close", function () {
        document.getElementById("modal-body").replaceChildren();
      });
      // A click on the backdrop (the dialog element itself) closes it.
      dialog.addEventListener("click", function (event) { if (event.target === dialog) closeModal(); });
    }
    scheduleAllToasts();
    wireSlugField();
    // Back on a long page after a change: show the part that changed.
    const shown = document.querySelector("[data-scroll-into-view]");
    if (shown) shown.scrollIntoView({ block: "start" });
  });
})();
