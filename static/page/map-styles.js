// Styles of the map's vector tile layers (Leaflet.VectorGrid), read by the map script folium generates
// (/carte.js): our own basemap, and the catalogue's sites and clusters of sites.
(function () {
  "use strict";
  const hidden = [];
  const BLUE = "#0b5cad";
  const GREEN = "#166534";

  window.mapStyles = {
    basemap: {
      // the basemap is a background: it takes no click (the sites above it do)
      regions: { fill: true, fillColor: "#f7f5f0", fillOpacity: 1, color: "#5f6b7a", weight: 1.5, interactive: false },
      departements: { fill: false, color: "#8c96a3", weight: 1, interactive: false },
      academies: hidden,
      communes: { fill: false, color: "#c3c9d0", weight: 0.6, interactive: false },
      labels: hidden,
    },
    solutions: {
      // A cluster: the bigger, the more sites it gathers (a click zooms in).
      clusters: (p) => ({
        radius: Math.min(18, 5 + 2.5 * Math.log2(p.count || 1)), fill: true, fillColor: BLUE, fillOpacity: 0.25,
        color: BLUE, weight: 2,
      }),
      // A site: green when at least one of its solutions still has places.
      sites: (p) => ({
        radius: 6, fill: true, fillColor: p.vacancy ? GREEN : BLUE, fillOpacity: 0.85, color: "#ffffff", weight: 1.5,
      }),
    },
    featureId: (feature) => feature.id,
  };
})();
