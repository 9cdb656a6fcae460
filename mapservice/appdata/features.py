"""The public catalogue's GeoJSON features as stored at write time: `solution_feature` and `site_feature`
(migration 0012), where the catalogue's triggers keep, for each published solution and site, the text that the
bundles' SQL (bundles.SOLUTIONS, bundles.SITES) writes from the rows. The bundles and the change feed read them
instead of writing each feature again (~35 µs each: index lookups, then JSON)."""
from __future__ import annotations

KINDS = ("solution", "site")
TABLES = {"solution": "solution_feature", "site": "site_feature"}

# What an area's condition reads (alias `site` for the site, `c` for its commune): the whole catalogue reads the
# stored texts alone.
AREA_JOINS = {
    "solution": " JOIN solution s ON s.id = f.id JOIN site ON site.id = s.site_id "
                "JOIN commune c ON c.code = site.commune_code",
    "site": " JOIN site ON site.id = f.id JOIN commune c ON c.code = site.commune_code",
}


def stored(kind: str, in_area: str, where: str = "true") -> str:
    """SQL: (id, feature) of the stored features of `kind` (alias f) meeting `where`, in the area `in_area` (an
    SQL condition on `site` and `c`; "true" for the whole catalogue)."""
    joins = "" if in_area == "true" else AREA_JOINS[kind]
    return f"SELECT f.id, f.feature FROM {TABLES[kind]} f{joins} WHERE {where} AND ({in_area})"
