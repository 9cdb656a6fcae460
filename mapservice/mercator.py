"""Web Mercator (EPSG:3857), the plane the published solutions are indexed in, as PostgreSQL's native points in
SP-GiST indexes (migrations 0017, 0019). A flat plane, where the geography index's 3D boxes around the globe
overlap in dense places; native points, whose distances the index computes exactly, where PostGIS's GiST
rechecks each row and evaluates a function for every entry of every page it visits (a walk to the nearest
solution took 0.11 ms in GiST, 0.015 ms here). The index only finds candidates; distances are then measured on
the WGS84 spheroid."""

# A solution's point as its indexes hold it (alias s).
SOLUTION_POINT = ("point(ST_X(ST_Transform(s.position::geometry, 3857)), "
                  "ST_Y(ST_Transform(s.position::geometry, 3857)))")


def point(lon: str, lat: str) -> str:
    """SQL: the Mercator point of the float8 SQL values `lon`, `lat`, its latitude held within the projection's
    ±85° (a walk from beyond still starts from the nearest points it can reach)."""
    held = f"greatest(-85::float8, least(85::float8, {lat}))"
    mercator = f"ST_Transform(ST_SetSRID(ST_MakePoint({lon}, {held}), 4326), 3857)"
    return f"point(ST_X({mercator}), ST_Y({mercator}))"


def box(origin: str, lat: str, metres: str) -> str:
    """SQL: the Mercator box around `origin` (its Mercator point, latitude `lat`) that holds every point within
    `metres` of it on the spheroid. 3857 stretches lengths by at most 1.0068 / cos(latitude) (WGS84's smallest
    meridian radius is 6,335,439 m), and no point of that disc lies farther from the equator than the origin's
    latitude plus `metres` along the meridian. Near a pole, or across the antimeridian, the box is the whole
    plane."""
    farthest_latitude = f"abs({lat}) + degrees({metres} / 6335439)"
    half = f"CASE WHEN {farthest_latitude} < 85 THEN {metres} * 1.007 / cos(radians({farthest_latitude})) ELSE 1e9 END"
    across = f"CASE WHEN abs(({origin})[0]) + {half} < 20037508.34 THEN {half} ELSE 1e9 END"
    return (f"box(point(({origin})[0] - {across}, ({origin})[1] - {half}), "
            f"point(({origin})[0] + {across}, ({origin})[1] + {half}))")
