"""Geometry toolkit shared by every Liandong service.

* GCJ-02 ("Mars coordinates", 火星坐标) <-> WGS84 conversion. Chinese map providers (AMap/高德,
  Tencent) publish GCJ-02; everything stored by Liandong is WGS84 (EPSG:4326) lon/lat.
* Geodesic distances in metres and projection to UTM zone 51N (EPSG:32651).
* :class:`CityLocator`: which of the five cities (太仓, 昆山, 常熟, 嘉定, 宝山) a point lies in.
* :class:`SquadZones`: which enforcement squad (中队) zone of a city a point lies in.

All functions take and return ``(lon, lat)`` in that order (x before y).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CityLocator",
    "SquadZones",
    "Zone",
    "default_city_locator",
    "demo_zone_cities",
    "gcj02_to_wgs84",
    "metres_between",
    "project_geometry",
    "to_utm",
    "to_wgs84",
    "wgs84_to_gcj02",
]

# --------------------------------------------------------------------------------------------
# Packaged data
# --------------------------------------------------------------------------------------------

CITIES_FILE = "five-cities.geojson"
ZONES_DIR = "zones"
DEMO_ZONES_SUFFIX = ".demo.geojson"


def _data_dir() -> Any:
    """The packaged ``data`` directory (a Traversable; a plain Path when not installed)."""
    if __package__:
        try:
            return resources.files(__package__) / "data"
        except (ModuleNotFoundError, TypeError):  # pragma: no cover - unusual import setups
            pass
    return Path(__file__).resolve().parent / "data"


def _read_json(source: Any) -> dict[str, Any]:
    with source.open("r", encoding="utf-8") as fh:
        return json.load(fh)


# --------------------------------------------------------------------------------------------
# GCJ-02 <-> WGS84
# --------------------------------------------------------------------------------------------

_KRASOVSKY_A = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid
_KRASOVSKY_EE = 0.00669342162296594323  # its first eccentricity squared
_INVERSE_TOLERANCE_DEG = 1e-7
_INVERSE_MAX_ITERATIONS = 10


def _out_of_china(lon: float, lat: float) -> bool:
    """The conventional bounding-box test: GCJ-02 is only applied inside it."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 shift ``(dlon, dlat)`` in degrees for a WGS84 point (no China check)."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _KRASOVSKY_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 -> GCJ-02 (exact forward obfuscation). Points outside China are unchanged."""
    if _out_of_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS84 by fixed-point iteration of the forward transform.

    Iterates until the round trip ``wgs84_to_gcj02(result)`` is within 1e-7 degrees of the input
    (normally 2-3 iterations, at most 10). Points outside China are returned unchanged.
    """
    if _out_of_china(lon, lat):
        return lon, lat
    w_lon, w_lat = lon, lat
    for _ in range(_INVERSE_MAX_ITERATIONS):
        dlon, dlat = _gcj02_offset(w_lon, w_lat)
        err_lon = w_lon + dlon - lon
        err_lat = w_lat + dlat - lat
        if abs(err_lon) < _INVERSE_TOLERANCE_DEG and abs(err_lat) < _INVERSE_TOLERANCE_DEG:
            break
        w_lon -= err_lon
        w_lat -= err_lat
    return w_lon, w_lat


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a point given in ``crs`` ("WGS84" or "GCJ02", case-insensitive) to WGS84.

    Raises ``ValueError`` for any other CRS name (e.g. Baidu's "BD09" is not supported).
    """
    name = crs.strip().upper() if isinstance(crs, str) else ""
    if name == "WGS84":
        return float(lon), float(lat)
    if name == "GCJ02":
        return gcj02_to_wgs84(float(lon), float(lat))
    raise ValueError(f"unsupported coordinate system {crs!r}: expected 'WGS84' or 'GCJ02'")


# --------------------------------------------------------------------------------------------
# Distances and projection
# --------------------------------------------------------------------------------------------

_GEOD = pyproj.Geod(ellps="WGS84")
UTM_51N = "EPSG:32651"


def metres_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres between two WGS84 points (WGS84 ellipsoid)."""
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist)


@functools.lru_cache(maxsize=1)
def _utm_transformer() -> pyproj.Transformer:
    """The cached WGS84 -> UTM 51N transformer (thread-safe since pyproj 3.1)."""
    return pyproj.Transformer.from_crs("EPSG:4326", UTM_51N, always_xy=True)


def to_utm(lon: float, lat: float) -> tuple[float, float]:
    """Project a WGS84 point to UTM zone 51N (EPSG:32651): ``(x, y)`` in metres."""
    x, y = _utm_transformer().transform(lon, lat)
    return float(x), float(y)


def project_geometry(geom: BaseGeometry) -> BaseGeometry:
    """Project a shapely geometry from WGS84 lon/lat to UTM zone 51N metres."""
    transformer = _utm_transformer()

    def _project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _project)


@functools.lru_cache(maxsize=1)
def _wgs84_transformer() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(UTM_51N, "EPSG:4326", always_xy=True)


def unproject_geometry(geom: BaseGeometry) -> BaseGeometry:
    """Back from UTM zone 51N metres to WGS84 lon/lat (the inverse of `project_geometry`)."""
    transformer = _wgs84_transformer()

    def _unproject(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, _unproject)


def parse_polygon(geojson: Any) -> BaseGeometry:
    """A valid, non-empty (Multi)Polygon from GeoJSON, or `ValueError` saying what is wrong."""
    if not isinstance(geojson, Mapping):
        raise ValueError("not a GeoJSON object")
    try:
        geom = shape(geojson)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise ValueError(f"not a GeoJSON geometry: {exc}") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"a Polygon or MultiPolygon is needed, not {geom.geom_type}")
    if geom.is_empty or not geom.is_valid:
        raise ValueError("an empty or self-intersecting polygon")
    coords = np.array(shapely.get_coordinates(geom))
    if not (np.all(np.abs(coords[:, 0]) <= 180) and np.all(np.abs(coords[:, 1]) <= 90)):
        raise ValueError("coordinates are not WGS84 longitude/latitude")
    return geom


# --------------------------------------------------------------------------------------------
# Polygon lookup (STRtree + prepared geometries)
# --------------------------------------------------------------------------------------------


class _PolygonIndex:
    """Polygons indexed by an STRtree; the polygons are prepared for fast ``covers`` tests."""

    def __init__(self, geometries: list[BaseGeometry]) -> None:
        self._geoms = np.array(geometries, dtype=object)
        for geom in geometries:
            shapely.prepare(geom)
        self._tree = shapely.STRtree(self._geoms)

    def first_covering(self, lon: float, lat: float) -> int | None:
        """Index of the first polygon containing or touching the point, else None."""
        point = shapely.Point(lon, lat)
        candidates = self._tree.query(point)
        if len(candidates) == 0:
            return None
        for idx in sorted(candidates.tolist()):
            if self._geoms[idx].covers(point):
                return idx
        return None


def _feature_collection_features(data: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
        raise ValueError(f"{what}: expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError(f"{what}: FeatureCollection has no features")
    return features


def _polygonal_geometry(feature: Any, what: str) -> BaseGeometry:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise ValueError(f"{what}: not a GeoJSON Feature")
    raw = feature.get("geometry")
    if not isinstance(raw, Mapping) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        got = raw.get("type") if isinstance(raw, Mapping) else raw
        raise ValueError(f"{what}: geometry must be a Polygon or MultiPolygon, got {got!r}")
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise ValueError(f"{what}: malformed geometry: {exc}") from exc
    if geom.is_empty:
        raise ValueError(f"{what}: geometry is empty")
    if not geom.is_valid:
        raise ValueError(f"{what}: geometry is invalid ({shapely.is_valid_reason(geom)})")
    return geom


class CityLocator:
    """Tells which city (by code: taicang, kunshan, changshu, jiading, baoshan) a point is in."""

    def __init__(self, feature_collection: Mapping[str, Any] | None = None) -> None:
        """Load city boundaries from a FeatureCollection (default: the packaged five cities).

        Each feature needs a Polygon/MultiPolygon geometry and a unique ``city`` property.
        """
        if feature_collection is None:
            feature_collection = _read_json(_data_dir() / CITIES_FILE)
        features = _feature_collection_features(feature_collection, "city boundaries")
        codes: list[str] = []
        geoms: list[BaseGeometry] = []
        for i, feature in enumerate(features):
            geom = _polygonal_geometry(feature, f"city boundaries, feature {i}")
            code = (feature.get("properties") or {}).get("city")
            if not isinstance(code, str) or not code:
                raise ValueError(f"city boundaries, feature {i}: missing 'city' property")
            if code in codes:
                raise ValueError(f"city boundaries: duplicate city code {code!r}")
            codes.append(code)
            geoms.append(geom)
        self._codes = codes
        self._by_code = dict(zip(codes, geoms, strict=True))
        self._index = _PolygonIndex(geoms)

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> CityLocator:
        """Load city boundaries from a GeoJSON file."""
        return cls(_read_json(Path(path)))

    def city_at(self, lon: float, lat: float) -> str | None:
        """The code of the city whose polygon contains (or touches) the WGS84 point, else None."""
        idx = self._index.first_covering(lon, lat)
        return None if idx is None else self._codes[idx]

    def boundary(self, city: str) -> BaseGeometry:
        """The (Multi)Polygon of a city; ``KeyError`` for an unknown code."""
        try:
            return self._by_code[city]
        except KeyError:
            raise KeyError(f"unknown city {city!r}; known: {', '.join(self._codes)}") from None

    def cities(self) -> list[str]:
        """City codes in file order."""
        return list(self._codes)


@functools.lru_cache(maxsize=1)
def default_city_locator() -> CityLocator:
    """The process-wide locator over the packaged five-city boundaries (loaded once)."""
    return CityLocator()


# --------------------------------------------------------------------------------------------
# Squad zones
# --------------------------------------------------------------------------------------------

_ZONE_TEXT_PROPERTIES = ("squad", "name_zh", "name_en", "town_zh", "town_en")


@dataclass(frozen=True, slots=True)
class Zone:
    """One squad (中队) zone: ``squad`` is the stable code, e.g. "taicang-chengxiang"."""

    squad: str
    name_zh: str
    name_en: str
    town_zh: str
    town_en: str
    demo: bool


def demo_zone_cities() -> list[str]:
    """Cities for which a packaged demo zone file exists."""
    zones_dir = _data_dir() / ZONES_DIR
    return sorted(
        entry.name[: -len(DEMO_ZONES_SUFFIX)]
        for entry in zones_dir.iterdir()
        if entry.name.endswith(DEMO_ZONES_SUFFIX)
    )


class SquadZones:
    """Squad zones of one city, looked up by point (STRtree + prepared geometries)."""

    def __init__(self, feature_collection: Mapping[str, Any]) -> None:
        """Load and validate zones from a GeoJSON FeatureCollection.

        Every feature must be a Polygon/MultiPolygon with string properties ``squad``,
        ``name_zh``, ``name_en``, ``town_zh``, ``town_en`` and a boolean ``demo``; squad codes
        must be unique. Raises ``ValueError`` otherwise.
        """
        features = _feature_collection_features(feature_collection, "squad zones")
        zones: list[Zone] = []
        geoms: list[BaseGeometry] = []
        seen: set[str] = set()
        for i, feature in enumerate(features):
            what = f"squad zones, feature {i}"
            geom = _polygonal_geometry(feature, what)
            props = feature.get("properties")
            if not isinstance(props, Mapping):
                raise ValueError(f"{what}: missing properties")
            for key in _ZONE_TEXT_PROPERTIES:
                value = props.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f"{what}: property {key!r} missing or not a non-empty string")
            if not isinstance(props.get("demo"), bool):
                raise ValueError(f"{what}: property 'demo' missing or not a boolean")
            squad = props["squad"]
            if squad in seen:
                raise ValueError(f"squad zones: duplicate squad code {squad!r}")
            seen.add(squad)
            zones.append(Zone(**{key: props[key] for key in (*_ZONE_TEXT_PROPERTIES, "demo")}))
            geoms.append(geom)
        self._zones = zones
        self._by_squad = {z.squad: g for z, g in zip(zones, geoms, strict=True)}
        self._index = _PolygonIndex(geoms)

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> SquadZones:
        """Load zones from a GeoJSON file."""
        return cls(_read_json(Path(path)))

    @classmethod
    def demo(cls, city: str) -> SquadZones:
        """The packaged DEMO zones of ``city`` (approximate, not official boundaries)."""
        available = demo_zone_cities()
        if city not in available:
            raise ValueError(f"no demo zones for city {city!r}; available: {', '.join(available)}")
        return cls(_read_json(_data_dir() / ZONES_DIR / f"{city}{DEMO_ZONES_SUFFIX}"))

    def zone_at(self, lon: float, lat: float) -> Zone | None:
        """The zone containing (or touching) the WGS84 point, else None."""
        idx = self._index.first_covering(lon, lat)
        return None if idx is None else self._zones[idx]

    def zones(self) -> list[Zone]:
        """All zones in file order."""
        return list(self._zones)

    def geometry(self, squad: str) -> BaseGeometry:
        """The (Multi)Polygon of a squad zone; ``KeyError`` for an unknown code."""
        return self._by_squad[squad]

    def __iter__(self) -> Iterator[Zone]:
        return iter(self._zones)

    def __len__(self) -> int:
        return len(self._zones)
