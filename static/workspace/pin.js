// The site form's map: a pin at the latitude/longitude fields (or the town hall once the site is saved),
// dragged to place the site; the fields follow the pin and the pin follows the fields. Without JavaScript the
// fields alone do the job.
(function () {
  "use strict";
  var box = document.getElementById("pin-map");
  var lat = document.getElementById("f-lat");
  var lon = document.getElementById("f-lon");
  if (!box || !lat || !lon || !window.L) { return; }
  box.removeAttribute("aria-hidden");
  box.setAttribute("role", "application");
  box.setAttribute("aria-label", "Carte : faites glisser le repère pour placer le lieu");
  var start = [parseFloat(lat.value), parseFloat(lon.value)];
  var known = isFinite(start[0]) && isFinite(start[1]);
  var map = L.map(box, { attributionControl: true }).setView(known ? start : [46.6, 2.4], known ? 16 : 5);
  map.attributionControl.setPrefix(false);
  if (L.vectorGrid && box.dataset.basemap) {
    var line = { weight: 1, color: "#777", fill: true, fillColor: "#f3f1ec", fillOpacity: 1 };
    L.vectorGrid.protobuf(box.dataset.basemap, {
      maxNativeZoom: 12, interactive: false,
      vectorTileLayerStyles: { regions: line, departements: line, communes: line, labels: function () { return []; } }
    }).addTo(map);
  }
  var pin = L.marker(known ? start : map.getCenter(), { draggable: true, keyboard: true, title: "Position du lieu" });
  pin.addTo(map);
  function round(x) { return Math.round(x * 1e6) / 1e6; }
  pin.on("dragend", function () {
    var p = pin.getLatLng();
    lat.value = round(p.lat);
    lon.value = round(p.lng);
  });
  function follow() {
    var p = [parseFloat(lat.value), parseFloat(lon.value)];
    if (isFinite(p[0]) && isFinite(p[1])) { pin.setLatLng(p); map.panTo(p); }
  }
  lat.addEventListener("change", follow);
  lon.addEventListener("change", follow);
}());
