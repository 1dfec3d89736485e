// Live updates: the page names its event stream in <body data-events>; each element with
// data-live="NAME" is replaced by the HTML of the stream's NAME events. Without JavaScript the
// pages are complete as served; this only keeps them current.
(function () {
  "use strict";
  var src = document.body.getAttribute("data-events");
  if (!src || !window.EventSource) return;
  var targets = document.querySelectorAll("[data-live]");
  var stream = new EventSource(src);
  stream.onopen = function () { document.body.setAttribute("data-live-state", "open"); };
  stream.onerror = function () { document.body.setAttribute("data-live-state", "reconnecting"); };
  Array.prototype.forEach.call(targets, function (el) {
    stream.addEventListener(el.getAttribute("data-live"), function (e) {
      el.innerHTML = e.data;
      document.body.setAttribute("data-updated", String(Date.now()));
    });
  });
})();
