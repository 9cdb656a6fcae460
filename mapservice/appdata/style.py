"""The MapLibre GL style document of the service: our basemap (or, when the operator provides one, a
self-hosted street basemap in the Protomaps schema, with our outlines over it) and the catalogue, French labels
drawn with the glyphs the service serves itself (Noto Sans, static/glyphs/). No third-party host."""
from __future__ import annotations

from .. import tiles

FONT = "Noto Sans Regular"
BLUE = "#0b5cad"
GREEN = "#166534"
INK = "#1f2933"
HALO = "#ffffff"


def _label(field: str = "name") -> list:
    return ["coalesce", ["get", f"{field}:fr"], ["get", field]]


def street_layers() -> list[dict]:
    """A light, readable style for a Protomaps basemap (layers earth, landuse, water, roads, places...)."""
    return [
        {"id": "streets-earth", "type": "fill", "source": "streets", "source-layer": "earth",
         "paint": {"fill-color": "#f4f1ea"}},
        {"id": "streets-landuse", "type": "fill", "source": "streets", "source-layer": "landuse",
         "filter": ["in", ["get", "kind"], ["literal", ["park", "forest", "wood", "grass", "nature_reserve"]]],
         "paint": {"fill-color": "#dcebd3", "fill-opacity": 0.7}},
        {"id": "streets-water", "type": "fill", "source": "streets", "source-layer": "water",
         "paint": {"fill-color": "#b7d3ea"}},
        {"id": "streets-buildings", "type": "fill", "source": "streets", "source-layer": "buildings", "minzoom": 14,
         "paint": {"fill-color": "#e3ded5"}},
        {"id": "streets-minor-roads", "type": "line", "source": "streets", "source-layer": "roads", "minzoom": 12,
         "filter": ["in", ["get", "kind"], ["literal", ["minor_road", "other"]]],
         "paint": {"line-color": "#ffffff", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.5, 16, 6]}},
        {"id": "streets-major-roads", "type": "line", "source": "streets", "source-layer": "roads",
         "filter": ["in", ["get", "kind"], ["literal", ["major_road", "highway"]]],
         "paint": {"line-color": "#f6d79a", "line-width": ["interpolate", ["linear"], ["zoom"], 6, 0.5, 16, 10]}},
        {"id": "streets-road-names", "type": "symbol", "source": "streets", "source-layer": "roads", "minzoom": 14,
         "layout": {"symbol-placement": "line", "text-field": _label(), "text-font": [FONT], "text-size": 12},
         "paint": {"text-color": "#4a5561", "text-halo-color": HALO, "text-halo-width": 1.5}},
        {"id": "streets-places", "type": "symbol", "source": "streets", "source-layer": "places",
         "layout": {"text-field": _label(), "text-font": [FONT],
                    "text-size": ["interpolate", ["linear"], ["zoom"], 6, 11, 14, 16]},
         "paint": {"text-color": INK, "text-halo-color": HALO, "text-halo-width": 1.5}},
    ]


def outline_layers(with_streets: bool) -> list[dict]:
    """Our régions, départements and communes; over a street basemap only their lines."""
    layers = []
    if not with_streets:
        layers.append({"id": "background", "type": "background", "paint": {"background-color": "#dfe7ee"}})
        layers.append({"id": "regions", "type": "fill", "source": "basemap", "source-layer": "regions",
                       "paint": {"fill-color": "#f7f5f0", "fill-outline-color": "#5f6b7a"}})
    layers += [
        {"id": "communes", "type": "line", "source": "basemap", "source-layer": "communes", "minzoom": 9,
         "paint": {"line-color": "#c3c9d0", "line-width": 0.6}},
        {"id": "departements", "type": "line", "source": "basemap", "source-layer": "departements",
         "paint": {"line-color": "#8c96a3", "line-width": 1}},
        {"id": "region-lines", "type": "line", "source": "basemap", "source-layer": "regions",
         "paint": {"line-color": "#5f6b7a", "line-width": 1.5}},
    ]
    if not with_streets:
        layers.append({"id": "area-labels", "type": "symbol", "source": "basemap", "source-layer": "labels",
                       "filter": ["any", ["==", ["get", "layer"], "region"],
                                  ["all", ["==", ["get", "layer"], "departement"], [">=", ["zoom"], 7]],
                                  ["all", ["==", ["get", "layer"], "commune"], [">=", ["zoom"], 10]]],
                       "layout": {"text-field": ["get", "name"], "text-font": [FONT],
                                  "text-size": ["match", ["get", "layer"], "region", 14, "departement", 12, 11]},
                       "paint": {"text-color": INK, "text-halo-color": HALO, "text-halo-width": 1.5}})
    return layers


def catalogue_layers(cluster_max_zoom: int) -> list[dict]:
    deepest = tiles.clusters_max_zoom(cluster_max_zoom)
    return [
        {"id": "clusters", "type": "circle", "source": "solutions", "source-layer": "clusters",
         "maxzoom": deepest + 1,
         "paint": {"circle-color": BLUE, "circle-opacity": 0.25, "circle-stroke-color": BLUE,
                   "circle-stroke-width": 2,
                   "circle-radius": ["min", 18, ["+", 5, ["*", 2.5, ["log2", ["max", 1, ["get", "count"]]]]]]}},
        {"id": "cluster-counts", "type": "symbol", "source": "solutions", "source-layer": "clusters",
         "maxzoom": deepest + 1,
         "layout": {"text-field": ["to-string", ["get", "count"]], "text-font": [FONT], "text-size": 12,
                    "text-allow-overlap": True},
         "paint": {"text-color": INK}},
        {"id": "sites", "type": "circle", "source": "solutions", "source-layer": "sites",
         "paint": {"circle-radius": 6, "circle-color": ["case", ["get", "vacancy"], GREEN, BLUE],
                   "circle-stroke-color": HALO, "circle-stroke-width": 1.5}},
        {"id": "site-names", "type": "symbol", "source": "solutions", "source-layer": "sites", "minzoom": 14,
         "layout": {"text-field": ["get", "name"], "text-font": [FONT], "text-size": 12, "text-offset": [0, 1.2],
                    "text-anchor": "top", "text-optional": True},
         "paint": {"text-color": INK, "text-halo-color": HALO, "text-halo-width": 1.5}},
    ]


def style(tilejson_url: dict[str, str], glyphs_url: str, cluster_max_zoom: int,
          street_basemap_url: str | None = None, street_attribution: str | None = None) -> dict:
    """The style document. `tilejson_url[name]` is the TileJSON of each of our tilesets; `glyphs_url` the
    template of the glyph ranges; `street_basemap_url` a Protomaps basemap archive (read through the pmtiles
    protocol, which the client registers: `maplibregl.addProtocol("pmtiles", new pmtiles.Protocol().tile)`)."""
    sources = {
        "basemap": {"type": "vector", "url": tilejson_url["basemap"]},
        "solutions": {"type": "vector", "url": tilejson_url["solutions"]},
    }
    layers = []
    if street_basemap_url:
        sources = {"streets": {"type": "vector", "url": f"pmtiles://{street_basemap_url}",
                               "attribution": street_attribution or ""}, **sources}
        layers += street_layers()
    layers += outline_layers(with_streets=bool(street_basemap_url)) + catalogue_layers(cluster_max_zoom)
    return {
        "version": 8,
        "name": "masecondechance",
        "metadata": {"mapservice:language": "fr"},
        "center": [2.35, 46.6],
        "zoom": 5,
        "glyphs": glyphs_url,
        "sources": sources,
        "layers": layers,
    }
