// Tasque dashboard: live refresh and selection. Our own code, no dependencies.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  var live = document.getElementById("live");
  if (live && localStorage.getItem("tasque.live") === "off") live.checked = false;
  if (live) live.addEventListener("change", function () {
    localStorage.setItem("tasque.live", live.checked ? "on" : "off");
  });

  function busy() {
    // Never replace the page under the user's hands: a selection, a focused field.
    var active = document.activeElement;
    if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return true;
    return document.querySelector("input.select:checked") !== null;
  }

  function refresh() {
    if (!live || !live.checked || document.hidden || busy()) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null || busy()) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) { main.innerHTML = fresh.innerHTML; wire(); }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function wire() {
    var boxes = document.querySelectorAll("input.select");
    var count = document.getElementById("selected-count");
    function update() {
      var n = document.querySelectorAll("input.select:checked").length;
      if (count) count.textContent = n + " selected";
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    var all = document.getElementById("select-all");
    if (all) all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      update();
    });
  }

  wire();
  // Polling pauses while the tab is hidden and catches up as soon as it is shown again.
  setInterval(refresh, PERIOD_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
