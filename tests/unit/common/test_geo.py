"""Unit tests for services.common.geo (coordinates, distances, city and squad-zone lookup)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Point

from services.common import geo
from services.common.geo import (
    CityLocator,
    SquadZones,
    Zone,
    default_city_locator,
    gcj02_to_wgs84,
    metres_between,
    project_geometry,
    to_utm,
    to_wgs84,
    wgs84_to_gcj02,
)

CITIES = ["taicang", "kunshan", "changshu", "jiading", "baoshan"]

TAICANG_SQUADS = {
    "taicang-chengxiang",
    "taicang-shaxi",
    "taicang-liuhe",
    "taicang-fuqiao",
    "taicang-huangjing",
    "taicang-shuangfeng",
    "taicang-loudong",
    "taicang-ludu",
    "taicang-kejiaoxincheng",
    "taicang-gangqu",
    "taicang-gaoxinqu",
}


def _random_points(geom, n: int, seed: int, inside: bool) -> list[tuple[float, float]]:
    """``n`` seeded-random points inside (or, with inside=False, near but outside) ``geom``."""
    rng = random.Random(seed)
    minx, miny, maxx, maxy = geom.bounds
    pad = 0.0 if inside else 0.05
    shapely.prepare(geom)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        lon = rng.uniform(minx - pad, maxx + pad)
        lat = rng.uniform(miny - pad, maxy + pad)
        p = Point(lon, lat)
        if inside and geom.contains(p):
            points.append((lon, lat))
        elif not inside and geom.distance(p) > 1e-9:
            points.append((lon, lat))
    return points


# ---------------------------------------------------------------------------------------------
# City lookup
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "city"),
    [
        (121.10, 31.45, "taicang"),  # 城厢
        (121.25, 31.38, "jiading"),
        (121.44, 31.40, "baoshan"),
        (120.98, 31.38, "kunshan"),
        (120.75, 31.65, "changshu"),
        (121.49, 31.23, None),  # 黄浦区, Shanghai
        (122.5, 31.5, None),  # East China Sea
    ],
)
def test_city_at_known_points(lon: float, lat: float, city: str | None) -> None:
    assert default_city_locator().city_at(lon, lat) == city


def test_default_city_locator_is_cached_and_lists_five_cities() -> None:
    assert default_city_locator() is default_city_locator()
    assert default_city_locator().cities() == CITIES


def test_boundary_returns_the_city_polygon() -> None:
    loc = default_city_locator()
    for city in CITIES:
        boundary = loc.boundary(city)
        assert boundary.geom_type in ("Polygon", "MultiPolygon")
        rep = boundary.representative_point()
        assert loc.city_at(rep.x, rep.y) == city
    with pytest.raises(KeyError):
        loc.boundary("suzhou")


def test_city_at_boundary_vertex_counts_as_inside() -> None:
    loc = default_city_locator()
    lon, lat = loc.boundary("taicang").exterior.coords[0]
    assert loc.city_at(lon, lat) is not None


def test_city_locator_from_file(tmp_path: Path) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"city": "square"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
                },
            }
        ],
    }
    path = tmp_path / "square.geojson"
    path.write_text(json.dumps(fc), encoding="utf-8")
    loc = CityLocator.from_file(path)
    assert loc.cities() == ["square"]
    assert loc.city_at(0.5, 0.5) == "square"
    assert loc.city_at(1.0, 0.5) == "square"  # on the edge
    assert loc.city_at(1.5, 0.5) is None


def test_ten_thousand_city_at_calls_complete() -> None:
    loc = default_city_locator()
    points = _random_points(loc.boundary("taicang").envelope, 10_000, seed=7, inside=True)
    found = [loc.city_at(lon, lat) for lon, lat in points]
    assert len(found) == 10_000
    # Same answers as a brute-force check against every city polygon.
    pts = shapely.points(points)
    expected: list[str | None] = [None] * len(points)
    for city in reversed(CITIES):
        for i in shapely.covers(loc.boundary(city), pts).nonzero()[0]:
            expected[i] = city
    assert found == expected
    assert 4_000 < found.count("taicang") < 6_000  # Taicang fills about half its bounding box


# ---------------------------------------------------------------------------------------------
# Coordinates and distances
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(121.10, 31.45), (120.75, 31.65), (121.44, 31.40), (116.39, 39.91), (113.26, 23.13)],
)
def test_gcj02_round_trip(lon: float, lat: float) -> None:
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    assert (g_lon, g_lat) != (lon, lat)
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert abs(w_lon - lon) < 1e-6
    assert abs(w_lat - lat) < 1e-6


def test_gcj02_offset_magnitude_near_taicang() -> None:
    lon, lat = 121.10, 31.45
    shift = metres_between(lon, lat, *wgs84_to_gcj02(lon, lat))
    assert 300 <= shift <= 900


def test_gcj02_known_value() -> None:
    # Regression value of the standard algorithm (Tiananmen, WGS84 -> GCJ-02).
    g_lon, g_lat = wgs84_to_gcj02(116.391275, 39.907320)
    assert g_lon == pytest.approx(116.397519, abs=2e-5)
    assert g_lat == pytest.approx(39.908725, abs=2e-5)


@pytest.mark.parametrize(("lon", "lat"), [(-0.1276, 51.5072), (139.69, 35.69), (151.2, -33.9)])
def test_out_of_china_unchanged(lon: float, lat: float) -> None:
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_to_wgs84() -> None:
    lon, lat = 121.10, 31.45
    assert to_wgs84(lon, lat, "WGS84") == (lon, lat)
    assert to_wgs84(lon, lat, "wgs84") == (lon, lat)
    g = wgs84_to_gcj02(lon, lat)
    for crs in ("GCJ02", "gcj02"):
        w_lon, w_lat = to_wgs84(*g, crs)
        assert abs(w_lon - lon) < 1e-6 and abs(w_lat - lat) < 1e-6
    with pytest.raises(ValueError):
        to_wgs84(lon, lat, "BD09")
    with pytest.raises(ValueError):
        to_wgs84(lon, lat, "")


def test_metres_between() -> None:
    assert metres_between(121.10, 31.45, 121.10, 31.451) == pytest.approx(110.9, abs=1.0)
    assert metres_between(121.10, 31.45, 121.10, 31.45) == 0.0
    # Taicang 城厢 to Jiading old town: roughly 16 km.
    assert 12_000 < metres_between(121.10, 31.45, 121.25, 31.38) < 20_000


def test_to_utm_and_project_geometry() -> None:
    x, y = to_utm(123.0, 0.0)  # central meridian of zone 51 on the equator
    assert x == pytest.approx(500_000.0, abs=1e-6)
    assert y == pytest.approx(0.0, abs=1e-6)
    x1, y1 = to_utm(121.10, 31.45)
    x2, y2 = to_utm(121.10, 31.451)
    assert ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 == pytest.approx(110.9, abs=1.0)
    taicang_km2 = project_geometry(default_city_locator().boundary("taicang")).area / 1e6
    assert 700 < taicang_km2 < 900  # Taicang is about 810 km²
    line = project_geometry(shapely.LineString([(121.10, 31.45), (121.10, 31.451)]))
    assert line.length == pytest.approx(110.9, abs=1.0)


# ---------------------------------------------------------------------------------------------
# Squad zones
# ---------------------------------------------------------------------------------------------


def test_demo_zone_files_exist_for_all_cities() -> None:
    assert geo.demo_zone_cities() == sorted(CITIES)


@pytest.mark.parametrize("city", CITIES)
def test_demo_zones_load_and_are_demo(city: str) -> None:
    zones = SquadZones.demo(city)
    listed = zones.zones()
    assert 5 <= len(listed) <= 11
    assert all(isinstance(z, Zone) and z.demo is True for z in listed)
    assert all(z.squad.startswith(f"{city}-") for z in listed)
    assert all(z.name_zh.endswith("中队") and z.name_en.endswith("Squad") for z in listed)


@pytest.mark.parametrize("city", CITIES)
def test_demo_zones_cover_city_exactly(city: str) -> None:
    zones = SquadZones.demo(city)
    boundary = default_city_locator().boundary(city)
    union = shapely.union_all([zones.geometry(z.squad) for z in zones.zones()])
    assert shapely.symmetric_difference(union, boundary).area < 1e-9
    for lon, lat in _random_points(boundary, 2000, seed=CITIES.index(city), inside=True):
        assert zones.zone_at(lon, lat) is not None, (city, lon, lat)
    for lon, lat in shapely.get_coordinates(boundary.boundary):
        assert zones.zone_at(lon, lat) is not None, (city, lon, lat)
    for lon, lat in _random_points(boundary, 500, seed=42, inside=False):
        assert zones.zone_at(lon, lat) is None, (city, lon, lat)


def test_taicang_squads() -> None:
    zones = SquadZones.demo("taicang")
    assert {z.squad for z in zones.zones()} == TAICANG_SQUADS
    assert len(zones.zones()) == 11
    chengxiang = zones.zone_at(121.10, 31.45)
    assert chengxiang is not None
    assert chengxiang.squad == "taicang-chengxiang"
    assert chengxiang.name_zh == "城厢镇中队"
    assert chengxiang.name_en == "Chengxiang Town Squad"
    assert chengxiang.town_zh == "城厢镇"


def test_zone_is_frozen() -> None:
    zone = SquadZones.demo("taicang").zones()[0]
    with pytest.raises(AttributeError):
        zone.squad = "x"  # type: ignore[misc]


def test_demo_rejects_unknown_city() -> None:
    with pytest.raises(ValueError):
        SquadZones.demo("suzhou")
    with pytest.raises(ValueError):
        SquadZones.demo("../five-cities")


def _zone_feature(squad: str | None, x0: float) -> dict:
    props = {
        "name_zh": "测试中队",
        "name_en": "Test Squad",
        "town_zh": "测试镇",
        "town_en": "Test Town",
        "demo": True,
    }
    if squad is not None:
        props["squad"] = squad
    ring = [[x0, 0], [x0 + 1, 0], [x0 + 1, 1], [x0, 1], [x0, 0]]
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _write(tmp_path: Path, features: list[dict]) -> Path:
    path = tmp_path / "zones.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def test_from_file_accepts_valid_zones(tmp_path: Path) -> None:
    zones = SquadZones.from_file(_write(tmp_path, [_zone_feature("a", 0), _zone_feature("b", 1)]))
    assert [z.squad for z in zones.zones()] == ["a", "b"]
    assert zones.zone_at(0.5, 0.5).squad == "a"
    assert zones.zone_at(1.5, 0.5).squad == "b"
    assert zones.zone_at(2.5, 0.5) is None


def test_from_file_rejects_missing_squad(tmp_path: Path) -> None:
    path = _write(tmp_path, [_zone_feature("a", 0), _zone_feature(None, 1)])
    with pytest.raises(ValueError, match="squad"):
        SquadZones.from_file(path)


def test_from_file_rejects_duplicate_squad(tmp_path: Path) -> None:
    path = _write(tmp_path, [_zone_feature("a", 0), _zone_feature("a", 1)])
    with pytest.raises(ValueError, match="duplicate"):
        SquadZones.from_file(path)


def test_from_file_rejects_non_polygon(tmp_path: Path) -> None:
    feature = _zone_feature("a", 0)
    feature["geometry"] = {"type": "Point", "coordinates": [0.5, 0.5]}
    with pytest.raises(ValueError, match="Polygon"):
        SquadZones.from_file(_write(tmp_path, [feature]))


def test_from_file_rejects_non_boolean_demo(tmp_path: Path) -> None:
    feature = _zone_feature("a", 0)
    feature["properties"]["demo"] = "yes"
    with pytest.raises(ValueError, match="demo"):
        SquadZones.from_file(_write(tmp_path, [feature]))
