(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");
  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  var current = -1;

  function select(index, scroll, keepFocus) {
    if (!cards.length) { return; }
    current = Math.max(0, Math.min(cards.length - 1, index));
    cards.forEach(function (card) { card.classList.remove("current"); });
    var card = cards[current];
    card.classList.add("current");
    if (scroll) { card.scrollIntoView({ block: "center" }); }
    if (!keepFocus) { card.focus({ preventScroll: true }); }
  }

  function shown(card) { return card.offsetParent !== null; }  // not folded away in a closed <details>

  function move(step) {
    var visible = cards.filter(shown);
    if (!visible.length) { return; }
    var at = visible.indexOf(cards[current]);
    var next = at < 0 ? 0 : Math.max(0, Math.min(visible.length - 1, at + step));
    select(cards.indexOf(visible[next]), true);
  }

  function start() {
    var named = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    var folded = named ? named.closest("details") : null;
    if (folded) { folded.open = true; }
    var index = named ? cards.indexOf(named) : -1;
    if (index < 0) {
      index = cards.findIndex(function (card) { return card.hasAttribute("data-waiting") && shown(card); });
    }
    if (index >= 0 || cards.length) { select(Math.max(index, 0), index > 0 || !!named); }
  }

  function field(name) {
    var card = cards[current];
    return card ? card.querySelector("[name='" + name + "']") : null;
  }

  function press(selector) {
    var card = cards[current];
    var button = card ? card.querySelector(selector) : null;
    if (button) { button.click(); }
  }

  function step(amount) {
    var points = field("points");
    if (!points) { return; }
    var value = parseFloat((points.value || "0").replace(",", "."));
    points.value = String(Math.max(0, Math.round(((isNaN(value) ? 0 : value) + amount) * 100) / 100));
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
  }

  function go(id) {
    var link = document.getElementById(id);
    if (link) { link.click(); }
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
        event.preventDefault();
        var first = event.target.form.querySelector("button[type='submit']");
        if (first) { first.click(); }
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    var handled = true;
    if (key === "j") { move(1); }
    else if (key === "k") { move(-1); }
    else if (key === "q") { go("nav-queue"); }
    else if (page === "queue" && (key === "Enter" || key === "o")) {
      var row = cards[current];
      if (row) { location.href = row.getAttribute("data-href"); }
    }
    else if (page === "queue" && /^[1-9]$/.test(key)) { location.href = "/question/" + key; }
    else if (page !== "queue" && key === "a") { press("button[name='scope'][value='answer']"); }
    else if (page === "question" && key === "s") { press("button[name='scope'][value='subgroup']"); }
    else if (page === "question" && key === "g") { press("button[name='scope'][value='group']"); }
    else if (page !== "queue" && key === "u") { press("form.withdraw button"); }
    else if (page !== "queue" && key === "c") { var comment = field("comment"); if (comment) { comment.focus(); } }
    else if (page === "question" && /^[0-9]$/.test(key)) { var points = field("points"); if (points) { points.value = key; } }
    else if (page === "question" && (key === "+" || key === "=")) { step(0.25); }
    else if (page === "question" && key === "-") { step(-0.25); }
    else if (page === "question" && key === "n") { go("next-question"); }
    else if (page === "question" && key === "p") { go("previous-question"); }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });

  cards.forEach(function (card, index) {
    card.addEventListener("focusin", function (event) {
      if (current !== index) { select(index, false, event.target !== card); }
    });
  });
  start();
})();
