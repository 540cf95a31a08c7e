// Mailroom dashboard: the little behaviour htmx does not give. No inline scripts (CSP).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Times are shown in the user's time zone; until they choose one, report the browser's
  // own once (the server ignores it when a zone is already set; pages/account.py).
  var detectToken = document.body.dataset.detectTimeZone;
  if (detectToken && window.fetch && window.Intl) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) {
      var body = new URLSearchParams({ csrf_token: detectToken, time_zone: zone, detected: "true" });
      fetch("/account/time-zone", { method: "POST", body: body, credentials: "same-origin" });
    }
  }
  // Provider presets fill the server fields: the chosen protocol's (IMAP or POP3) and
  // SMTP's, all of them, so "Any other server" after Gmail leaves no smtp.gmail.com and
  // POP3 gets POP3's port (connectors/presets.py; issue 13).
  var preset = document.getElementById("preset");
  var protocol = document.getElementById("protocol");
  var setField = function (id, value) {
    var field = document.getElementById(id);
    if (field && value !== undefined && value !== null) { field.value = value; }
  };
  var DEFAULT_PORTS = { imap: { ssl: "993", starttls: "143", none: "143" },
                        pop3: { ssl: "995", starttls: "110", none: "110" } };
  var applyIncoming = function () {
    var opt = preset.options[preset.selectedIndex];
    var pop3 = protocol && protocol.value === "pop3";
    if (opt.value === "custom") {
      // Keep a typed host; move the port only if it is the other protocol's default.
      var port = document.getElementById("port");
      var security = document.getElementById("security").value;
      var other = DEFAULT_PORTS[pop3 ? "imap" : "pop3"];
      if (port && (port.value === other.ssl || port.value === other.starttls || !port.value)) {
        port.value = DEFAULT_PORTS[pop3 ? "pop3" : "imap"][security] || port.value;
      }
      return;
    }
    setField("host", pop3 ? opt.dataset.pop3Host : opt.dataset.host);
    setField("port", pop3 ? opt.dataset.pop3Port : opt.dataset.port);
    setField("security", pop3 ? opt.dataset.pop3Security : opt.dataset.security);
  };
  if (preset) {
    preset.addEventListener("change", function () {
      var opt = preset.options[preset.selectedIndex];
      if (opt.value === "custom") {
        setField("host", "");
        setField("smtp_host", "");
      }
      applyIncoming();
      setField("smtp_host", opt.dataset.smtpHost);
      setField("smtp_port", opt.dataset.smtpPort);
      setField("smtp_security", opt.dataset.smtpSecurity);
      showOauth(opt.dataset.oauth, opt.textContent);
    });
    if (protocol) { protocol.addEventListener("change", applyIncoming); }
  }
  // "Find settings": the address's servers from services/discovery.py, filled in here;
  // without JavaScript the button submits the form and the page comes back filled.
  var discoverButton = document.getElementById("discover-button");
  var discoverEmail = document.getElementById("discover_email");
  var result = document.getElementById("discover-result");
  var oauthNote = document.getElementById("discover-oauth");
  var SOURCE_WORDS = { preset: "built-in preset", autoconfig: "the domain's autoconfig",
                       srv: "DNS SRV records", mx: "the domain's MX host" };
  // An OAuth provider (Google, Microsoft): say to use its sign-in button, not a password.
  var showOauth = function (provider, label) {
    if (!oauthNote) { return; }
    oauthNote.hidden = !provider;
    if (result) { result.dataset.oauth = provider || ""; }
    if (provider) {
      var who = provider === "google" ? "Google" : "Microsoft";
      oauthNote.textContent = (label || who) + " signs in with " + who +
        ": use \u201cSign in with " + who + "\u201d instead of a password.";
    }
  };
  var fillFound = function (found) {
    showOauth(found.oauth, found.label);
    if (!found.found) {
      result.textContent = "No settings found for " + found.email + ". " + (found.hint || "");
      return;
    }
    var pop3 = found.pop3 && (protocol.value === "pop3" || !found.imap);
    var incoming = pop3 ? found.pop3 : found.imap;
    var known = found.provider && preset.querySelector("option[value='" + found.provider + "']");
    preset.value = known ? found.provider : "custom";
    if (incoming) {
      protocol.value = pop3 ? "pop3" : "imap";
      setField("host", incoming.host);
      setField("port", String(incoming.port));
      setField("security", incoming.security);
    }
    setField("smtp_host", found.smtp ? found.smtp.host : "");
    setField("smtp_port", String(found.smtp ? found.smtp.port : 587));
    setField("smtp_security", found.smtp ? found.smtp.security : "starttls");
    setField("username", found.username);
    result.textContent = "Found by " + (SOURCE_WORDS[found.source] || found.source) + ": " +
      found.detail + ".";
  };
  var lastAsked = null;
  var findSettings = function (event) {
    if (event) { event.preventDefault(); }
    var email = discoverEmail.value.trim();
    if (email.indexOf("@") < 1 || email === lastAsked) { return; }
    lastAsked = email;
    var form = document.getElementById("connect-form");
    var body = new URLSearchParams();
    body.append("csrf_token", form.elements.csrf_token.value);
    body.append("discover_email", email);
    result.textContent = "Looking up the servers of " + email + "\u2026";
    fetch("/mailboxes/discover", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          lastAsked = null;
          result.textContent = data.error + (data.hint ? " " + data.hint : "");
          return;
        }
        fillFound(data);
      });
    }).catch(function () {
      lastAsked = null;
      result.textContent = "The lookup failed; enter the servers by hand.";
    });
  };
  if (discoverButton && discoverEmail && result) {
    discoverButton.addEventListener("click", function (event) {
      lastAsked = null;
      findSettings(event);
    });
    discoverEmail.addEventListener("change", function () { findSettings(null); });
    discoverEmail.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { lastAsked = null; findSettings(event); }
    });
  }
  // "/" jumps to the search box, as in most dashboards.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag)) {
      var search = document.querySelector("input[type=search]");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });
  // Compose's To/Cc/Bcc: the address book (services/addressbook.py) as the user types the
  // last address of the list; each suggestion keeps the addresses already typed. Without
  // JavaScript the datalist holds the first 20 addresses and the fields are plain inputs.
  var book = document.getElementById("addressbook");
  var bookTimer = null;
  var fillBook = function (field) {
    var typed = field.value;
    var cut = Math.max(typed.lastIndexOf(","), typed.lastIndexOf(";"));
    var before = cut >= 0 ? typed.slice(0, cut + 1).trim() + " " : "";
    var q = typed.slice(cut + 1).trim();
    fetch("/compose/addressbook?q=" + encodeURIComponent(q), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (data) {
        book.textContent = "";
        data.items.forEach(function (item) {
          var opt = document.createElement("option");
          opt.value = before + item.address;
          opt.textContent = item.name ? item.name + (item.record ? " · " + item.record : "") : item.address;
          book.appendChild(opt);
        });
      })
      .catch(function () { /* keep the suggestions already there */ });
  };
  if (book) {
    document.querySelectorAll("input[data-addressbook]").forEach(function (field) {
      field.addEventListener("input", function () {
        clearTimeout(bookTimer);
        bookTimer = setTimeout(function () { fillBook(field); }, 150);
      });
    });
  }
});
