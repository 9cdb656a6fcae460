// The map page: place search, "Autour de moi", the list of the nearest solutions, filters, the detail of a
// solution, who covers the area, and the map kept in sync with the list. The page's state (place, filters,
// selected solution, phone view) lives in the URL so that it can be shared and reloaded.
(function () {
  "use strict";

  const API = "/api/v1";
  const PAGE_SIZE = 20;
  const ORIGIN_KINDS = ["commune", "postcode", "departement", "region"];
  const FILTERS = ["type", "voie", "formula"];
  const NETWORK_DOWN = "Le service ne répond pas pour le moment. Vérifie ta connexion internet, puis réessaie.";
  const staleAfterDays = Number(document.body.dataset.staleAfterDays || 180);

  const $ = (selector) => document.querySelector(selector);
  const els = {
    form: $("#recherche"), input: $("#lieu"), suggestions: $("#suggestions"), locate: $("#autour-de-moi"),
    message: $("#message"), zone: $("#resultats-zone"), results: $("#resultats"), title: $("#titre-resultats"),
    summary: $("#resume"), list: $("#liste"), more: $("#plus"), detail: $("#detail"),
    detailBody: $("#detail-contenu"), back: $("#retour"), report: $("#signaler"), reportForm: $("#form-signaler"),
    reportMessage: $("#signaler-message"), coverage: $("#couverture"), voieGroup: $("#filtre-voie"),
    formulaGroup: $("#filtre-formule"), vacancy: $("#places-libres"),
  };

  // -- small helpers ---------------------------------------------------------------------------------------

  /** An element with attributes and children (strings become text: no HTML is ever parsed from data). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else el.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const numberFr = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
  const dateFr = new Intl.DateTimeFormat("fr-FR", { day: "numeric", month: "long", year: "numeric" });

  function distanceText(km) {
    if (km === null || km === undefined) return null;
    if (km < 1) return `${Math.max(10, Math.round(km * 100) * 10)} m`;
    return `${numberFr.format(km < 10 ? km : Math.round(km))} km`;
  }

  /** How far a solution of the list is, as said (`spoken`) and as shown. A site whose address is not located
   * stands at its commune's centre: its distance is only that of the centre, so it is never given to the
   * metre. In the commune searched from (`searched`, null outside any commune), it is simply there. */
  function distanceLabel(props, searched) {
    const shown = distanceText(props.distance_km);
    if (props.position_precision !== "commune") return { spoken: `à ${shown}`, shown };
    if (searched && searched.code === props.commune_code) {
      return { spoken: "dans la commune", shown: "dans la commune" };
    }
    return { spoken: `à environ ${shown}`, shown: `≈ ${shown}` };
  }

  function dateText(iso) {
    return iso ? dateFr.format(new Date(iso)) : null;
  }

  function checkedInfo(iso) {
    if (!iso) return { stale: true, text: "Jamais vérifié : appelle avant d'y aller" };
    const days = (Date.now() - new Date(iso).getTime()) / 86400000;
    if (days > staleAfterDays) {
      return { stale: true, text: `Vérifié le ${dateText(iso)}, il y a longtemps : appelle avant d'y aller` };
    }
    return { stale: false, text: `Vérifié le ${dateText(iso)}` };
  }

  function placesText(props) {
    if (props.vacant_places === null || props.vacant_places === undefined) return null;
    if (props.vacant_places === 0) return "Plus de place libre pour le moment";
    return props.vacant_places === 1 ? "1 place libre" : `${props.vacant_places} places libres`;
  }

  function exampleBadge(isExample) {
    return isExample ? h("span", { class: "badge example" }, "Exemple fictif") : null;
  }

  function showMessage(text, { error = false, retry = null } = {}) {
    els.message.replaceChildren(h("p", {}, text));
    if (retry) {
      const button = h("button", { type: "button", class: "button" }, "Réessayer");
      button.addEventListener("click", retry);
      els.message.append(button);
    }
    els.message.classList.toggle("error", error);
    els.message.hidden = false;
  }

  function clearMessage() {
    els.message.hidden = true;
    els.message.replaceChildren();
  }

  class PageError extends Error {
    constructor(message, { network = false, status = 0 } = {}) {
      super(message);
      this.network = network;
      this.status = status;
    }
  }

  /** GET or POST JSON from our own API; a PageError says in plain words what went wrong. */
  async function api(path, options) {
    let response;
    try {
      response = await fetch(path, { headers: { Accept: "application/json" }, ...options });
    } catch (e) {
      throw new PageError(NETWORK_DOWN, { network: true });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const network = response.status >= 500;
      const detail = body && body.detail ? body.detail : NETWORK_DOWN;
      throw new PageError(network ? NETWORK_DOWN : detail, { network, status: response.status });
    }
    return body;
  }

  // -- the state, and the URL that holds it ----------------------------------------------------------------

  const state = {
    origin: null, // {lat, lon} or {kind, code}
    type: [], voie: [], formula: [], hasVacancy: false,
    solution: null, // id of the solution shown in detail
    view: "liste", // on a phone: "liste" or "carte"
  };
  let label = ""; // what the search box shows for the current origin

  function readUrl() {
    const params = new URLSearchParams(location.search);
    state.origin = null;
    const lat = parseFloat(params.get("lat"));
    const lon = parseFloat(params.get("lon"));
    if (Number.isFinite(lat) && Number.isFinite(lon)) state.origin = { lat, lon };
    for (const kind of ORIGIN_KINDS) {
      if (params.get(kind)) state.origin = { kind, code: params.get(kind) };
    }
    for (const name of FILTERS) {
      state[name] = (params.get(name) || "").split(",").filter(Boolean);
    }
    state.hasVacancy = params.get("has_vacancy") === "true";
    state.solution = /^\d+$/.test(params.get("solution") || "") ? params.get("solution") : null;
    state.view = params.get("vue") === "carte" ? "carte" : "liste";
    label = params.get("lieu") || "";
  }

  /** The search's parameters, shared by the page URL, the API and the tiles. */
  function searchParams() {
    const params = new URLSearchParams();
    if (state.origin && "kind" in state.origin) params.set(state.origin.kind, state.origin.code);
    else if (state.origin) {
      params.set("lat", state.origin.lat);
      params.set("lon", state.origin.lon);
    }
    for (const name of FILTERS) if (state[name].length) params.set(name, state[name].join(","));
    if (state.hasVacancy) params.set("has_vacancy", "true");
    return params;
  }

  function filterParams() {
    const params = searchParams();
    for (const name of ["lat", "lon", ...ORIGIN_KINDS]) params.delete(name);
    return params;
  }

  function pageUrl(overrides) {
    const params = searchParams();
    const wanted = { lieu: label || null, solution: state.solution, vue: state.view === "carte" ? "carte" : null,
      ...overrides };
    for (const [name, value] of Object.entries(wanted)) if (value) params.set(name, value);
    const query = params.toString();
    return location.pathname + (query ? `?${query}` : "");
  }

  function writeUrl(push) {
    const url = pageUrl();
    if (url === location.pathname + location.search) return;
    history[push ? "pushState" : "replaceState"](null, "", url);
  }

  // -- controls <-> state -----------------------------------------------------------------------------------

  function searchAround(lat, lon) {
    // Rounded to about 100 m: enough to find what is near, and a shared link does not give a home address.
    state.origin = { lat: Math.round(lat * 1000) / 1000, lon: Math.round(lon * 1000) / 1000 };
    state.solution = null;
    label = "";
    els.input.value = "";
    clearMessage();
    writeUrl(true);
    return refresh().then(() => els.results.focus());
  }

  function syncControls() {
    for (const name of FILTERS) {
      for (const box of document.querySelectorAll(`input[name="${name}"]`)) box.checked = state[name].includes(box.value);
    }
    els.vacancy.checked = state.hasVacancy;
    els.voieGroup.hidden = !state.type.includes("places_lycee") && !state.voie.length;
    els.formulaGroup.hidden = !state.type.includes("service_civique") && !state.formula.length;
    if (label && document.activeElement !== els.input) els.input.value = label;
    setView(state.view);
  }

  function onFilterChange(event) {
    const box = event.target;
    if (box === els.vacancy) state.hasVacancy = box.checked;
    else if (FILTERS.includes(box.name)) {
      state[box.name] = Array.from(document.querySelectorAll(`input[name="${box.name}"]:checked`), (b) => b.value);
      // A sub-filter whose group disappears would keep filtering silently: drop it.
      if (!state.type.includes("places_lycee")) state.voie = [];
      if (!state.type.includes("service_civique")) state.formula = [];
    } else return;
    state.solution = null;
    syncControls();
    writeUrl(false);
    refresh();
  }

  function setView(view) {
    state.view = view;
    els.zone.dataset.view = view;
    for (const button of document.querySelectorAll(".view-switch [data-view]")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === view));
    }
    if (view === "carte") mapView.resize();
  }

  // -- the map (folium made it: window.map_carte) ----------------------------------------------------------

  const mapView = (function () {
    const map = window.map_carte;
    if (!map || !window.L) {
      return { show() {}, highlight() {}, resize() {}, setFilters() {}, popup() {}, closePopup() {} };  // the map script did not load
    }
    const L = window.L;
    map.attributionControl.setPrefix(false);
    // Before any search, mainland France fills the map, whatever its width.
    const FRANCE = L.latLngBounds([41.3, -5.2], [51.1, 9.6]);
    if (map.getSize().x > 0) map.fitBounds(FRANCE);
    L.control.scale({ imperial: false }).addTo(map);
    const results = L.layerGroup().addTo(map);
    let origin = null;
    const markers = new Map();

    function icon(number, selected) {
      return L.divIcon({ className: selected ? "result-marker is-selected" : "result-marker",
        html: `<span>${number}</span>`, iconSize: [30, 30], iconAnchor: [15, 15] });
    }

    // The nearest on top when markers overlap (many lycées share their town hall's position).
    const rankZ = (rank) => (500 - rank) * 100;

    function show(features, center, append) {
      if (!append) {
        results.clearLayers();
        markers.clear();
      }
      if (origin) origin.remove();
      if (center) {
        origin = L.circleMarker([center.lat, center.lon], { radius: 7, color: "#6b2c91", weight: 3,
          fillColor: "#ffffff", fillOpacity: 1, interactive: false }).addTo(map);
      }
      features.forEach((feature) => {
        const props = feature.properties;
        const [lon, lat] = feature.geometry.coordinates;
        const marker = L.marker([lat, lon], { icon: icon(props.rank, false), title: `${props.rank}. ${props.title}`,
          alt: `${props.rank}. ${props.title}`, riseOnHover: true, keyboard: true, zIndexOffset: rankZ(props.rank) });
        marker.on("click", () => selectFromMap(props.id));
        marker.addTo(results);
        markers.set(String(props.id), { marker, rank: props.rank });
      });
      const points = Array.from(markers.values(), (m) => m.marker.getLatLng());
      if (center) points.push(L.latLng(center.lat, center.lon));
      if (points.length && !append) fit(L.latLngBounds(points).pad(0.15));
    }

    // A hidden map (phone, list view) has no size: it is fitted to the results when it is shown.
    let pendingBounds = null;

    function fit(bounds) {
      pendingBounds = map.getSize().x === 0 ? bounds : null;
      if (!pendingBounds) map.fitBounds(bounds, { maxZoom: 14 });
    }

    function resize() {
      map.invalidateSize();
      if (pendingBounds) fit(pendingBounds);
      showTiles();
    }

    function showTiles() {
      if (tilesDeferred && map.getSize().x > 0) {
        tileLayers.forEach((layer) => layer.addTo(map));
        tilesDeferred = false;
      }
    }

    function highlight(id, pan) {
      for (const [key, { marker, rank }] of markers) {
        const selected = key === String(id);
        marker.setIcon(icon(rank, selected));
        marker.setZIndexOffset(selected ? 100000 : rankZ(rank));
        if (selected && pan) map.panTo(marker.getLatLng());
      }
    }

    // The catalogue's vector tiles (folium made the layer: window.vector_grid_protobuf_solutions).
    const catalogue = window.vector_grid_protobuf_solutions;
    const catalogueUrl = catalogue ? catalogue._url.split("?")[0] : null;

    // The tile layers are added once the map is on screen: a phone downloads no tile for a hidden map.
    const tileLayers = [window.streetBasemap, window.vector_grid_protobuf_basemap, catalogue].filter(Boolean);
    let tilesDeferred = true;
    showTiles();

    function setFilters(params) {
      if (!catalogue) return;
      const query = params.toString();
      const url = catalogueUrl + (query ? `?${query}` : "");
      if (catalogue._url !== url) catalogue.setUrl(url);
    }

    function sitePopup(props, latlng) {
      const button = h("button", { type: "button", class: "button" }, "Chercher autour de ce lieu");
      button.addEventListener("click", () => {
        map.closePopup();
        searchAround(latlng.lat, latlng.lng);
      });
      const count = props.solutions === 1 ? "1 solution" : `${props.solutions} solutions`;
      return h("div", { class: "site-popup" }, h("p", {}, h("strong", {}, props.name)), exampleBadge(props.is_example),
        h("p", {}, count + (props.vacancy ? ", avec des places libres" : "")), button);
    }

    if (catalogue) {
      // Leaflet 1.9 takes a clicked circle's position from getLatLng(), which Leaflet.VectorGrid 1.3 leaves
      // empty (its points live in tile pixels): give each point of a loaded tile its position.
      catalogue.on("tileload", (event) => {
        const renderer = catalogue._vectorTiles[catalogue._tileCoordsToKey(event.coords)];
        const origin = event.coords.scaleBy(catalogue.getTileSize());
        for (const feature of Object.values((renderer && renderer._layers) || {})) {
          if (feature._point && !feature._latlng) feature._latlng = map.unproject(origin.add(feature._point), event.coords.z);
        }
      });
      catalogue.on("click", (event) => {
        const props = event.layer.properties || {};
        const latlng = event.latlng;
        if (props.count !== undefined) {
          // a cluster of sites: come closer
          map.setView(latlng, Math.min(map.getZoom() + 2, map.getMaxZoom()));
          return;
        }
        const listedHere = Array.from(els.list.children).find((item) => item.dataset.site === String(props.id));
        if (listedHere) selectFromMap(listedHere.dataset.id);
        else L.popup().setLatLng(latlng).setContent(sitePopup(props, latlng)).openOn(map);
      });
    }

    function popup(feature, content) {
      const [lon, lat] = feature.geometry.coordinates;
      L.popup({ offset: [0, -12] }).setLatLng([lat, lon]).setContent(content).openOn(map);
    }

    return { show, highlight, resize, setFilters, popup, closePopup: () => map.closePopup() };
  })();

  /** A marker (or a site of the list) chosen on the map: its card is highlighted; when the list is not on
   * screen (phone, map view), a popup names it and offers its detail. */
  function selectFromMap(id) {
    const listOnScreen = !els.results.hidden && getComputedStyle(els.list).display !== "none";
    highlightItem(id, listOnScreen);
    mapView.highlight(id, false);
    const feature = listed.get(String(id));
    if (!listOnScreen && feature) {
      const open = h("button", { type: "button", class: "button" }, "Voir le détail");
      open.addEventListener("click", () => {
        mapView.closePopup();
        setView("liste");
        openDetail(id, true, feature.properties);
      });
      const p = feature.properties;
      mapView.popup(feature, h("div", { class: "site-popup" },
        h("p", {}, h("strong", {}, `${p.rank}. ${p.title}`)), exampleBadge(p.is_example),
        h("p", {}, [p.site_name, p.distance.shown].join(" — ")), open));
      open.focus();
    }
  }

  // -- the list -------------------------------------------------------------------------------------------

  let nextLink = null;
  const listed = new Map(); // id -> feature of the list
  let searchNumber = 0;

  function placeName(origin) {
    if (origin.area && origin.area.name) {
      return origin.area.kind === "departement" ? `${origin.area.name} (département)`
        : origin.area.kind === "region" ? `${origin.area.name} (région)` : origin.area.name;
    }
    if (origin.commune) return origin.commune.name;
    return "ce point";
  }

  function resultItem(feature) {
    const p = feature.properties;
    const checked = checkedInfo(p.last_checked_at);
    const where = [p.site_name, p.commune_name].filter(Boolean).join(" — ");
    const link = h("a", { href: pageUrl({ solution: p.id }), "data-solution": p.id }, p.title);
    const item = h("li", { class: `result${p.is_example ? " is-example" : ""}${checked.stale ? " is-stale" : ""}`,
      "data-id": p.id, "data-site": p.site_id },
    h("article", { "aria-labelledby": `r-${p.id}` },
      h("p", { class: "result-top" },
        h("span", { class: "rank", "aria-hidden": "true" }, p.rank),
        h("span", { class: "type" }, p.type_label),
        h("span", { class: "distance" }, h("span", { class: "visually-hidden" }, p.distance.spoken),
          h("span", { "aria-hidden": "true" }, p.distance.shown))),
      h("h3", { id: `r-${p.id}` }, link),
      exampleBadge(p.is_example),
      h("p", { class: "where" }, where),
      placesText(p) ? h("p", { class: p.vacant_places > 0 ? "places open" : "places" }, placesText(p)) : null,
      h("p", { class: "checked" }, checked.text)));
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      openDetail(p.id, true, p);
    });
    link.addEventListener("focus", () => mapView.highlight(p.id, false));
    item.addEventListener("mouseenter", () => mapView.highlight(p.id, false));
    return item;
  }

  function highlightItem(id, scroll) {
    let found = null;
    for (const item of els.list.children) {
      const selected = item.dataset.id === String(id);
      item.classList.toggle("is-selected", selected);
      if (selected) found = item;
    }
    if (found && scroll) {
      found.scrollIntoView({ block: "nearest" });
      found.querySelector("a").focus({ preventScroll: true });
    }
    return found;
  }

  function renderResults(body, append) {
    const start = append ? els.list.children.length : 0;
    body.features.forEach((feature, i) => {
      feature.properties.rank = start + i + 1;
      feature.properties.distance = distanceLabel(feature.properties, body.origin.commune);
    });
    if (!append) {
      els.list.replaceChildren();
      listed.clear();
    }
    for (const feature of body.features) listed.set(String(feature.properties.id), feature);
    els.list.append(...body.features.map(resultItem));
    const count = els.list.children.length;
    const where = state.origin && "lat" in state.origin && !state.origin.kind ? `près de toi (${placeName(body.origin)})`
      : `près de ${placeName(body.origin)}`;
    els.title.textContent = count ? `Solutions ${where}` : "Résultats";
    document.title = `Solutions ${where} — Ma seconde chance`;
    els.summary.textContent = count
      ? `${count} solution${count > 1 ? "s" : ""}, de la plus proche à la plus éloignée.`
      : `Aucune solution ne correspond à ces filtres ${where}. Enlève un filtre pour en voir plus.`;
    const next = (body.links || []).find((link) => link.rel === "next");
    nextLink = next ? next.href : null;
    els.more.hidden = !nextLink;
    mapView.show(body.features, body.origin, append);
  }

  async function refresh() {
    syncControls();
    mapView.setFilters(filterParams());
    if (!state.origin) {
      showDetail(false);
      return;
    }
    const number = ++searchNumber;
    els.results.setAttribute("aria-busy", "true");
    try {
      const params = searchParams();
      params.set("limit", PAGE_SIZE);
      const body = await api(`${API}/solutions/nearest?${params}`);
      if (number !== searchNumber) return;
      clearMessage();
      if (!label) {
        label = placeName(body.origin);
        if ("lat" in state.origin) label = "";
      }
      renderResults(body, false);
      loadCoverage(body.origin);
      if (state.solution) openDetail(state.solution, false);
      else showDetail(false);
    } catch (error) {
      if (number !== searchNumber) return;
      showMessage(error.message, { error: true, retry: error.network ? refresh : null });
    } finally {
      if (number === searchNumber) els.results.removeAttribute("aria-busy");
    }
  }

  async function loadMore() {
    if (!nextLink) return;
    try {
      const url = new URL(nextLink, location.href);
      const body = await api(url.pathname + url.search);
      renderResults(body, true);
      const first = els.list.children[els.list.children.length - body.features.length];
      if (first) first.querySelector("a").focus();
    } catch (error) {
      showMessage(error.message, { error: true, retry: error.network ? loadMore : null });
    }
  }

  // -- the detail of a solution --------------------------------------------------------------------------

  function showDetail(visible) {
    els.detail.hidden = !visible;
    els.results.hidden = visible;
  }

  function row(term, ...value) {
    const values = value.flat().filter((v) => v !== null && v !== undefined && v !== "");
    return values.length ? [h("dt", {}, term), h("dd", {}, ...values)] : [];
  }

  function contactList(contact) {
    const items = [];
    if (contact && contact.phone) {
      items.push(h("li", {}, h("a", { class: "phone", href: `tel:${contact.phone.replace(/[^\d+]/g, "")}` },
        `Appeler le ${contact.phone}`)));
    }
    if (contact && contact.email) {
      items.push(h("li", {}, h("a", { href: `mailto:${contact.email}` }, `Écrire à ${contact.email}`)));
    }
    // The API sends only http(s) links; checked again here, as for any link that comes from data.
    if (contact && contact.website && /^https?:\/\//i.test(contact.website)) {
      items.push(h("li", {}, h("a", { href: contact.website, rel: "noopener noreferrer" },
        "Site internet (s'ouvre sur un autre site)")));
    }
    return items.length ? h("ul", { class: "contact" }, items) : h("p", {}, "Pas de contact connu pour le moment.");
  }

  // iPhones and iPads open no geo: link (Safari calls the address invalid); Apple's maps address opens Plans.
  const apple = /iPhone|iPad|iPod/.test(navigator.userAgent)
    || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);

  /** The directions to a site in the phone's maps application: to its position, or, for a site that stands at
   * its commune's centre (its address not located), to what the application finds by its name and address. */
  function directionsLink(lat, lon, site, name, address) {
    const lookedUp = site.position_precision === "commune" ? encodeURIComponent([name, ...address].join(", ")) : null;
    if (apple) return `https://maps.apple.com/?daddr=${lookedUp || `${lat},${lon}`}`;
    if (lookedUp) return `geo:0,0?q=${lookedUp}`;
    return `geo:${lat},${lon}?q=${lat},${lon}(${encodeURIComponent(name)})`;
  }

  function renderDetail(feature, listProps) {
    const p = feature.properties;
    const site = p.site || {};
    const [lon, lat] = feature.geometry.coordinates;
    const checked = checkedInfo(p.last_checked_at);
    const address = [site.address, [site.postcode, site.commune_name].filter(Boolean).join(" ")].filter(Boolean);
    const ages = p.min_age && p.max_age ? `De ${p.min_age} à ${p.max_age} ans` : p.min_age ? `À partir de ${p.min_age} ans`
      : p.max_age ? `Jusqu'à ${p.max_age} ans` : null;
    const hours = p.hours_per_week ? `${p.hours_per_week} h de mission par semaine`
      + (p.school_hours_per_week ? ` + ${p.school_hours_per_week} h de cours au lycée` : "") : null;
    const places = placesText(p);
    const distance = listProps && listProps.distance ? listProps.distance.shown : null;
    els.detailBody.replaceChildren(h("article", { class: `detail-card${p.is_example ? " is-example" : ""}` },
      h("p", { class: "type" }, p.type_label),
      h("h2", { id: "titre-detail", tabindex: "-1" }, p.title),
      exampleBadge(p.is_example),
      h("p", { class: "site" }, [site.name, site.kind_label ? `(${site.kind_label})` : null].filter(Boolean).join(" ")),
      p.description ? h("p", {}, p.description) : null,
      h("dl", {},
        row("Adresse", address.join(", "), site.position_precision === "commune"
          ? h("span", { class: "hint" }, " (sur la carte : au centre de la commune, l'adresse exacte fait foi)") : null),
        row("Distance", distance),
        row("Places libres", places, p.capacity ? ` (sur ${p.capacity})` : null),
        row("Voie", p.voie_label),
        row("Niveau", p.level),
        row("Domaine", p.domain),
        row("Formule", p.service_civique_formula_label),
        row("Temps par semaine", hours),
        row("Âge", ages),
        row("Pour qui", p.eligibility),
        row("Début", dateText(p.start_date)),
        row("Fin", dateText(p.end_date)),
        row("Horaires d'accueil", site.opening_hours),
        row("Accessibilité", site.accessibility)),
      h("h3", {}, "Comment s'inscrire"),
      h("p", {}, p.how_to_apply || "Contacte le lieu : il t'expliquera comment faire."),
      h("h3", {}, "Contacter"),
      contactList(site.contact),
      h("h3", {}, "Y aller"),
      h("p", {}, h("a", { class: "button",
        href: directionsLink(lat, lon, site, site.name || p.title, address) },
        "Ouvrir l'itinéraire dans mon application de cartes")),
      h("p", { class: `checked${checked.stale ? " is-stale" : ""}` }, checked.text)));
  }

  async function openDetail(id, userAction, listProps) {
    state.solution = String(id);
    if (userAction) writeUrl(true);
    highlightItem(id, false);
    mapView.highlight(id, true);
    showDetail(true);
    els.report.open = false;
    els.reportMessage.hidden = true;
    els.detailBody.replaceChildren(h("p", {}, "Chargement…"));
    try {
      const feature = await api(`${API}/solutions/${encodeURIComponent(id)}`);
      if (state.solution !== String(id)) return;
      const fromList = listProps || listPropsOf(id);
      renderDetail(feature, fromList);
      if (userAction) $("#titre-detail").focus();
    } catch (error) {
      if (state.solution !== String(id)) return;
      els.detailBody.replaceChildren(h("h2", { id: "titre-detail", tabindex: "-1" }, "Solution indisponible"),
        h("p", { class: "message error" }, error.message));
      if (userAction) $("#titre-detail").focus();
    }
  }

  function listPropsOf(id) {
    const feature = listed.get(String(id));
    return feature ? feature.properties : null;
  }

  function closeDetail() {
    const id = state.solution;
    state.solution = null;
    writeUrl(true);
    showDetail(false);
    const item = highlightItem(id, false);
    if (item) item.querySelector("a").focus();
    else els.results.focus();
  }

  async function sendReport(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(els.reportForm));
    for (const key of Object.keys(data)) if (!data[key].trim()) delete data[key];
    els.reportMessage.hidden = false;
    els.reportMessage.classList.remove("error");
    if (!data.reason) {
      els.reportMessage.classList.add("error");
      els.reportMessage.textContent = "Choisis ce qui ne va pas dans la liste.";
      $("#raison").focus();
      return;
    }
    try {
      const body = await api(`${API}/solutions/${encodeURIComponent(state.solution)}/error-reports`, {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(data),
      });
      els.reportForm.reset();
      els.reportMessage.textContent = body.message;
    } catch (error) {
      els.reportMessage.classList.add("error");
      els.reportMessage.textContent = error.message;
    }
  }

  // -- who covers my area ------------------------------------------------------------------------------

  function contactBlock(title, who) {
    if (!who) return null;
    return h("div", { class: "who" },
      h("h3", {}, title),
      h("p", {}, h("strong", {}, who.name), " ", exampleBadge(who.is_example)),
      who.contact && who.contact.name ? h("p", {}, who.contact.name) : null,
      who.contact && who.contact.address ? h("p", {}, who.contact.address) : null,
      contactList(who.contact));
  }

  async function loadCoverage(origin) {
    els.coverage.hidden = true;
    let query = null;
    if (state.origin.kind === "commune") query = `commune=${encodeURIComponent(state.origin.code)}`;
    else if (state.origin.kind === "postcode" || !state.origin.kind) {
      query = origin.commune ? `commune=${encodeURIComponent(origin.commune.code)}` : null;
    }
    if (!query) {
      els.coverage.replaceChildren(h("p", {}, "Choisis ta commune pour savoir qui s'occupe de chez toi."));
      els.coverage.hidden = false;
      return;
    }
    try {
      const body = await api(`${API}/coverage?${query}`);
      const reception = (body.reception && body.reception.features) || [];
      els.coverage.replaceChildren(
        h("p", {}, `À ${body.commune.name}, ces équipes aident les jeunes qui ont quitté l'école à trouver une solution :`),
        contactBlock("La plateforme de suivi et d'appui aux décrocheurs", body.psad_platform),
        contactBlock("Le réseau Formation Qualification Emploi (FOQUALE)", body.foquale_network),
        reception.length ? h("div", { class: "who" }, h("h3", {}, "Pour en parler en face à face"),
          h("ul", {}, reception.map((f) => h("li", {},
            h("strong", {}, f.properties.name), " ", exampleBadge(f.properties.is_example),
            h("br"), `${f.properties.kind_label}, ${f.properties.commune_name} — `
              + distanceLabel(f.properties, body.commune).shown,
            contactList(f.properties.contact))))) : null);
      els.coverage.hidden = false;
    } catch (error) {
      els.coverage.hidden = true;
    }
  }

  // -- the place search box (combobox with suggestions) ------------------------------------------------

  let suggestions = [];
  let active = -1;
  let typingTimer = null;
  let suggestNumber = 0;

  function closeSuggestions() {
    els.suggestions.hidden = true;
    els.input.setAttribute("aria-expanded", "false");
    els.input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function renderSuggestions() {
    els.suggestions.replaceChildren(...suggestions.map((feature, i) => {
      const option = h("li", { id: `lieu-${i}`, role: "option", "aria-selected": String(i === active) },
        feature.properties.label);
      option.addEventListener("mousedown", (event) => event.preventDefault());
      option.addEventListener("click", () => choosePlace(feature));
      return option;
    }));
    const open = suggestions.length > 0;
    els.suggestions.hidden = !open;
    els.input.setAttribute("aria-expanded", String(open));
    if (active >= 0) els.input.setAttribute("aria-activedescendant", `lieu-${active}`);
    else els.input.removeAttribute("aria-activedescendant");
  }

  async function fetchPlaces(text) {
    const body = await api(`${API}/places?${new URLSearchParams({ q: text, limit: "8" })}`);
    return body.features || [];
  }

  function onType() {
    clearTimeout(typingTimer);
    const text = els.input.value.trim();
    if (text.length < 2) {
      suggestions = [];
      closeSuggestions();
      return;
    }
    typingTimer = setTimeout(async () => {
      const number = ++suggestNumber;
      try {
        const found = await fetchPlaces(text);
        if (number !== suggestNumber) return;
        suggestions = found;
        active = -1;
        renderSuggestions();
      } catch (error) {
        if (error.network) showMessage(error.message, { error: true });
      }
    }, 200);
  }

  function onKey(event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!suggestions.length) return;
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + suggestions.length) % suggestions.length;
      renderSuggestions();
    } else if (event.key === "Escape") {
      closeSuggestions();
    }
  }

  function choosePlace(feature) {
    const p = feature.properties;
    closeSuggestions();
    label = p.label;
    els.input.value = label;
    state.origin = { kind: p.kind, code: p.code };
    state.solution = null;
    writeUrl(true);
    refresh().then(() => els.results.focus());
  }

  async function onSubmit(event) {
    event.preventDefault();
    clearTimeout(typingTimer);
    if (active >= 0 && suggestions[active]) {
      choosePlace(suggestions[active]);
      return;
    }
    const text = els.input.value.trim();
    if (text.length < 2) {
      showMessage("Tape le nom de ta ville, ton code postal, ton département ou ta région.", { error: true });
      els.input.focus();
      return;
    }
    try {
      const found = await fetchPlaces(text);
      if (!found.length) {
        showMessage(`Aucun lieu ne correspond à « ${text} ». Vérifie l'orthographe ou essaie ton code postal.`,
          { error: true });
        return;
      }
      choosePlace(found[0]);
    } catch (error) {
      showMessage(error.message, { error: true, retry: error.network ? () => onSubmit(event) : null });
    }
  }

  // -- "Autour de moi" -------------------------------------------------------------------------------------

  function locate() {
    if (!("geolocation" in navigator)) {
      showMessage("Ton navigateur ne peut pas donner ta position. Tape plutôt le nom de ta ville ou ton code postal.",
        { error: true });
      return;
    }
    showMessage("Recherche de ta position…");
    navigator.geolocation.getCurrentPosition((position) => {
      searchAround(position.coords.latitude, position.coords.longitude);
    }, (error) => {
      const text = error.code === 1
        ? "Tu n'as pas autorisé la localisation. Tape plutôt le nom de ta ville ou ton code postal."
        : "Impossible de trouver ta position pour le moment. Tape plutôt le nom de ta ville ou ton code postal.";
      showMessage(text, { error: true });
      els.input.focus();
    }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 600000 });
  }

  // -- wiring ----------------------------------------------------------------------------------------------

  els.form.addEventListener("submit", onSubmit);
  els.input.addEventListener("input", onType);
  els.input.addEventListener("keydown", onKey);
  els.input.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  els.locate.addEventListener("click", locate);
  document.querySelector(".filters").addEventListener("change", onFilterChange);
  els.more.addEventListener("click", loadMore);
  els.back.addEventListener("click", closeDetail);
  els.reportForm.addEventListener("submit", sendReport);
  for (const button of document.querySelectorAll(".view-switch [data-view]")) {
    button.addEventListener("click", () => {
      setView(button.dataset.view);
      writeUrl(false);
    });
  }
  window.addEventListener("popstate", () => {
    readUrl();
    refresh();
  });

  // Leaflet.VectorGrid leaves a failed tile download unhandled (our own requests are all handled): without
  // network the map just stays empty, and the page already says that the service does not answer.
  window.addEventListener("unhandledrejection", (event) => {
    if (event.reason instanceof TypeError && /fetch/i.test(event.reason.message)) event.preventDefault();
  });

  if ("serviceWorker" in navigator && document.body.dataset.serviceWorker) {
    navigator.serviceWorker.register(document.body.dataset.serviceWorker).catch(() => {});
  }

  readUrl();
  refresh();
})();
