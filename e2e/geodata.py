"""A tiny stand-in for Immich's reverse-geocoding data (GeoNames cities500 + admin codes, Natural Earth).

Immich's image ships the full GeoNames and Natural Earth extracts (hundreds of MB) in
$IMMICH_BUILD_DATA/geodata and imports them at first start. The e2e run uses a handful of real places in
the same file formats instead: the import code path runs for real, in a second instead of minutes.
"""

import json
from pathlib import Path

STAND_IN_DATE = "2026-01-01T00:00:00.000Z (immich-aio e2e stand-in)"

# geonameid, name, latitude, longitude, country, admin1 code, timezone (public GeoNames facts).
CITIES = [
    (1796236, "Shanghai", 31.22222, 121.45806, "CN", "23", "Asia/Shanghai"),
    (1816670, "Beijing", 39.9075, 116.39723, "CN", "22", "Asia/Shanghai"),
    (1808926, "Hangzhou", 30.29365, 120.16142, "CN", "02", "Asia/Shanghai"),
    (1795565, "Shenzhen", 22.54554, 114.0683, "CN", "30", "Asia/Shanghai"),
]
ADMIN1 = {"CN.23": "Shanghai", "CN.22": "Beijing", "CN.02": "Zhejiang", "CN.30": "Guangdong"}


def _city_line(city: tuple[int, str, float, float, str, str, str]) -> str:
    geoname_id, name, latitude, longitude, country, admin1, timezone = city
    columns = [
        str(geoname_id), name, name, "", f"{latitude}", f"{longitude}", "P", "PPLA", country, "",
        admin1, "", "", "", "1000000", "", "10", timezone, "2026-01-01",
    ]  # fmt: skip
    return "\t".join(columns)


def write_stand_in(directory: Path) -> Path:
    """Write the stand-in geodata files Immich reads into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "geodata-date.txt").write_text(STAND_IN_DATE, encoding="utf-8")
    (directory / "cities500.txt").write_text(
        "\n".join(_city_line(c) for c in CITIES) + "\n", encoding="utf-8"
    )
    admin1 = [f"{code}\t{name}\t{name}\t0" for code, name in ADMIN1.items()]
    (directory / "admin1CodesASCII.txt").write_text("\n".join(admin1) + "\n", encoding="utf-8")
    (directory / "admin2Codes.txt").write_text("", encoding="utf-8")
    china_box = [[73.5, 18.0], [135.0, 18.0], [135.0, 53.5], [73.5, 53.5], [73.5, 18.0]]
    countries = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"ADMIN": "China", "ADM0_A3": "CHN", "TYPE": "Sovereign country"},
                "geometry": {"type": "Polygon", "coordinates": [china_box]},
            }
        ],
    }
    (directory / "ne_10m_admin_0_countries.geojson").write_text(json.dumps(countries), encoding="utf-8")
    return directory
