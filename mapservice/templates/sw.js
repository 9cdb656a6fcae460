// Service worker of the map page: keeps the page's shell (HTML, styles, scripts) so that the page still opens
// on a bad connection; the API and the tiles always go to the network (the page says when it does not answer).
"use strict";
const SHELL = {{ shell | tojson }};
const CACHE = {{ ("shell-" + version) | tojson }};
const PAGE = SHELL[0];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === PAGE) {
    // The page itself: fresh when the network answers, the kept copy otherwise (whatever its query string).
    event.respondWith(fetch(request).catch(() => caches.match(PAGE, { ignoreSearch: true })));
  } else if (SHELL.includes(url.pathname + url.search)) {
    event.respondWith(caches.match(request).then((kept) => kept || fetch(request)));
  }
});
