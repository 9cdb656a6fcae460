"""What the mobile app and other map clients take away: offline bundles per area (bundles.py), PMTiles
archives of the vector tiles (archives.py), the MapLibre style document (style.py) and the background refresh
that rebuilds them after the catalogue changed (refresh.py)."""
