/* Sdelka's own script: drag and drop on the deal board (native HTML5) and closing the search dropdown.
   Everything else is htmx; no arithmetic or business rule lives here. */
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function refreshCounts(board) {
    board.querySelectorAll(".column").forEach(function (column) {
      column.querySelector(".count").textContent = column.querySelectorAll(".deal-card").length;
    });
  }

  function setUpBoard(board) {
    var dragged = null;
    board.addEventListener("dragstart", function (event) {
      dragged = event.target.closest(".deal-card");
      if (!dragged) return;
      dragged.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.dataset.deal);
    });
    board.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("dragging");
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    });
    board.addEventListener("dragover", function (event) {
      var column = event.target.closest(".column");
      if (!column || !dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    });
    board.addEventListener("dragleave", function (event) {
      var column = event.target.closest(".column");
      if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
    });
    board.addEventListener("drop", function (event) {
      var column = event.target.closest(".column");
      if (!column || !dragged) return;
      event.preventDefault();
      column.classList.remove("drop-target");
      var card = dragged, from = card.parentElement;
      if (from === column.querySelector(".cards-list")) return;
      var body = new URLSearchParams({ stage: column.dataset.stage });
      if (column.dataset.kind === "lost") {
        var reason = window.prompt(board.dataset.lostPrompt);
        if (!reason) return;
        body.set("lost_reason", reason);
      }
      column.querySelector(".cards-list").prepend(card);
      refreshCounts(board);
      fetch(card.dataset.moveUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }
      }).then(function (response) {
        return response.text().then(function (text) {
          if (!response.ok) throw new Error(text);
          card.outerHTML = text;
          board.dispatchEvent(new CustomEvent("deal-moved", { bubbles: true }));
        });
      }).catch(function (error) {
        from.prepend(card);
        refreshCounts(board);
        window.alert(board.dataset.moveError + ": " + error.message);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".board").forEach(setUpBoard);
    var results = document.getElementById("search-results");
    if (results) {
      document.addEventListener("click", function (event) {
        if (!event.target.closest(".search")) results.innerHTML = "";
      });
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape") results.innerHTML = "";
      });
    }
  });
})();
