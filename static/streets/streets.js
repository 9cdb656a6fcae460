// The operator's self-hosted street basemap (a PMTiles archive of OpenStreetMap in the Protomaps schema), drawn
// under our outlines and the catalogue by protomaps-leaflet in a light style with French names. Loaded only when
// the service is configured with one (MAPSERVICE_STREET_BASEMAP); app.js adds window.streetBasemap with the other
// tile layers once the map is on screen.
(function () {
  "use strict";
  const url = document.body.dataset.streetBasemap;
  if (!url || !window.protomapsL || !window.mapStyles) return;
  window.streetBasemap = window.protomapsL.leafletLayer({
    url: url, flavor: "light", lang: "fr", attribution: document.body.dataset.streetAttribution || "",
  });
  window.streetBasemap.setZIndex(0);
  // Over streets, the régions are outlines only: their fill would hide the streets.
  window.mapStyles.basemap.regions = { fill: false, color: "#5f6b7a", weight: 1.5, interactive: false };
})();
