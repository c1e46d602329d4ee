"""Unit tests for services.leads.domain: dedup policies, duplicate picking, lock keys, search box,
routing and the visibility / role / decision rules. No broker, no database."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pyproj
import pytest

from contracts.errors import Forbidden, InvalidInput, OutsideJurisdiction
from contracts.http.leads import DECIDE_ROLES, SUBMIT_ROLES
from contracts.reference import CATEGORY_CODES
from services.common.geo import SquadZones, default_city_locator, metres_between
from services.common.inputs import require_role
from services.leads import domain
from services.leads.domain import (
    Candidate,
    DedupPolicy,
    Router,
    can_see,
    check_decision,
    dedup_lock_keys,
    dedup_policies,
    pick_duplicate,
    search_box,
)

GEOD = pyproj.Geod(ellps="WGS84")
LON, LAT = 121.10, 31.45  # Taicang 城厢
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POLICY = DedupPolicy(50.0, timedelta(minutes=30))
POLICIES = dedup_policies(50, 30, None)


def offset(lon: float, lat: float, azimuth_deg: float, metres: float) -> tuple[float, float]:
    """The point `metres` from (lon, lat) along the geodesic at `azimuth_deg` (0 = north)."""
    x, y, _ = GEOD.fwd(lon, lat, azimuth_deg, metres)
    return x, y


# dedup_policies ---------------------------------------------------------------------------------

def test_default_policy_applies_to_every_category():
    policies = dedup_policies(50, 30, None)
    assert set(policies) == set(CATEGORY_CODES)
    for policy in policies.values():
        assert policy == DedupPolicy(50.0, timedelta(minutes=30))


def test_empty_override_string_keeps_the_defaults():
    assert dedup_policies(50, 30, "") == dedup_policies(50, 30, None)
    assert dedup_policies(50, 30, " , ") == dedup_policies(50, 30, None)


def test_override_applies_only_to_its_category():
    policies = dedup_policies(50, 30, "exposed_garbage=80:10")
    assert policies["exposed_garbage"] == DedupPolicy(80.0, timedelta(minutes=10))
    others = {c: p for c, p in policies.items() if c != "exposed_garbage"}
    assert others and all(p == DedupPolicy(50.0, timedelta(minutes=30)) for p in others.values())


def test_several_overrides_with_spaces():
    policies = dedup_policies(50, 30, " exposed_garbage=80:10 , illegal_parking=20:5 ")
    assert policies["exposed_garbage"] == DedupPolicy(80.0, timedelta(minutes=10))
    assert policies["illegal_parking"] == DedupPolicy(20.0, timedelta(minutes=5))
    assert policies["street_vending"] == DedupPolicy(50.0, timedelta(minutes=30))


@pytest.mark.parametrize("item", [
    "noise=80:10",  # unknown category
    "exposed_garbage",  # no '='
    "exposed_garbage=80",  # no ':'
    "exposed_garbage=eighty:10",  # not a number
    "exposed_garbage=80:10:5",  # too many parts
    "a=b=c",
])
def test_bad_override_raises_naming_the_item(item):
    with pytest.raises(ValueError) as info:
        dedup_policies(50, 30, f"street_vending=10:5,{item}")
    assert repr(item) in str(info.value)


def test_unknown_category_is_named_as_unknown():
    with pytest.raises(ValueError, match="unknown category 'noise'"):
        dedup_policies(50, 30, "noise=80:10")


# pick_duplicate ---------------------------------------------------------------------------------

def test_nearest_candidate_within_radius_wins():
    far = Candidate("far", *offset(LON, LAT, 90, 40), T0)
    near = Candidate("near", *offset(LON, LAT, 270, 10), T0)
    for candidates in ([far, near], [near, far]):
        found = pick_duplicate(candidates, LON, LAT, T0, POLICY)
        assert found is not None
        assert found[0] is near
        assert found[1] == pytest.approx(10, abs=0.01)


def test_candidate_outside_radius_is_no_duplicate():
    outside = Candidate("out", *offset(LON, LAT, 0, 51), T0)
    assert pick_duplicate([outside], LON, LAT, T0, POLICY) is None


def test_no_candidates_no_duplicate():
    assert pick_duplicate([], LON, LAT, T0, POLICY) is None


@pytest.mark.parametrize("delta", [timedelta(minutes=30, seconds=1),
                                   -timedelta(minutes=30, seconds=1),
                                   timedelta(days=1)])
def test_candidate_outside_window_either_side_is_no_duplicate(delta):
    c = Candidate("c", LON, LAT, T0 + delta)
    assert pick_duplicate([c], LON, LAT, T0, POLICY) is None


@pytest.mark.parametrize("delta", [timedelta(minutes=30), -timedelta(minutes=30)])
def test_candidate_exactly_at_window_edge_is_a_duplicate(delta):
    c = Candidate("c", LON, LAT, T0 + delta)
    found = pick_duplicate([c], LON, LAT, T0, POLICY)
    assert found is not None and found[0] is c


def test_nearer_candidate_outside_window_loses_to_farther_inside():
    stale = Candidate("stale", *offset(LON, LAT, 0, 1), T0 - timedelta(hours=2))
    fresh = Candidate("fresh", *offset(LON, LAT, 0, 45), T0 - timedelta(minutes=5))
    found = pick_duplicate([stale, fresh], LON, LAT, T0, POLICY)
    assert found is not None and found[0] is fresh


# dedup_lock_keys --------------------------------------------------------------------------------

def test_lock_keys_are_sorted_and_unique():
    for lon, lat in [(LON, LAT), (121.0, 31.5), (121.2049999, 31.3999999)]:
        keys = dedup_lock_keys("exposed_garbage", lon, lat, 50)
        assert keys and keys == sorted(keys) and len(set(keys)) == len(keys)
        assert all(-(2**63) <= k < 2**63 for k in keys)  # fits pg_advisory_xact_lock(bigint)


def test_lock_keys_are_deterministic():
    assert dedup_lock_keys("exposed_garbage", LON, LAT, 50) == dedup_lock_keys(
        "exposed_garbage", LON, LAT, 50)


def test_point_near_cell_corner_locks_the_neighbouring_cells():
    # 10 m from the corner of four 0.01° cells: the 50 m circle touches all four.
    lon, lat = offset(121.11, 31.46, 225, 10)
    assert len(dedup_lock_keys("exposed_garbage", lon, lat, 50)) == 4


def test_different_categories_at_the_same_point_have_disjoint_keys():
    keys = {c: set(dedup_lock_keys(c, LON, LAT, 50)) for c in CATEGORY_CODES}
    cats = list(keys)
    for i, a in enumerate(cats):
        for b in cats[i + 1:]:
            assert not keys[a] & keys[b], (a, b)


def test_far_apart_points_never_share_a_key():
    a = set(dedup_lock_keys("exposed_garbage", LON, LAT, 50))
    b = set(dedup_lock_keys("exposed_garbage", *offset(LON, LAT, 90, 5_000), 50))
    assert not a & b


def _random_pairs(rng: random.Random, n: int):
    """Pairs of points around Taicang, many of them straddling lock-cell boundaries."""
    for i in range(n):
        radius = rng.choice([20.0, 50.0, 80.0, 200.0])
        if i % 2:
            # A just beside a cell boundary (in lon, lat or both), B across it.
            lon = round(LON + rng.uniform(-0.05, 0.05), 2) + rng.uniform(-0.0012, 0.0012)
            lat = round(LAT + rng.uniform(-0.05, 0.05), 2) + rng.uniform(-0.0012, 0.0012)
        else:
            lon = LON + rng.uniform(-0.05, 0.05)
            lat = LAT + rng.uniform(-0.05, 0.05)
        distance = radius * rng.choice([rng.uniform(0, 1), rng.uniform(0.97, 1.0), 1.0])
        blon, blat = offset(lon, lat, rng.uniform(0, 360), distance)
        yield radius, (lon, lat), (blon, blat)


def test_points_within_radius_of_each_other_always_share_a_lock_key():
    rng = random.Random(20260501)
    checked = 0
    for radius, (alon, alat), (blon, blat) in _random_pairs(rng, 4000):
        if metres_between(alon, alat, blon, blat) > radius:
            continue
        a = set(dedup_lock_keys("exposed_garbage", alon, alat, radius))
        b = set(dedup_lock_keys("exposed_garbage", blon, blat, radius))
        assert a & b, (radius, (alon, alat), (blon, blat))
        checked += 1
    assert checked > 3000  # the property was exercised, not skipped


def test_lock_keys_of_a_pair_straddling_a_cell_boundary_intersect():
    # A 1 m south of the 31.46° line, B 40 m north of A: different cells, must still meet.
    alon, alat = offset(121.105, 31.46, 180, 1)
    blon, blat = offset(alon, alat, 0, 40)
    assert math.floor(alat / domain.LOCK_CELL_DEG) != math.floor(blat / domain.LOCK_CELL_DEG)
    assert set(dedup_lock_keys("illegal_parking", alon, alat, 50)) & set(
        dedup_lock_keys("illegal_parking", blon, blat, 50))


# search_box -------------------------------------------------------------------------------------

def _in_box(box, lon, lat) -> bool:
    min_lon, max_lon, min_lat, max_lat = box
    return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


@pytest.mark.parametrize("radius", [50.0, 80.0])
@pytest.mark.parametrize("azimuth", [
    pytest.param(0, id="N"),
    pytest.param(45, id="NE"),
    pytest.param(90, id="E"),
    pytest.param(135, id="SE"),
    pytest.param(180, id="S"),
    pytest.param(225, id="SW"),
    pytest.param(270, id="W"),
    pytest.param(315, id="NW"),
])
def test_search_box_contains_the_point_at_radius(azimuth, radius):
    lon, lat = offset(LON, LAT, azimuth, radius)
    assert metres_between(LON, LAT, lon, lat) == pytest.approx(radius, abs=1e-6)
    assert _in_box(search_box(LON, LAT, radius), lon, lat)


def test_duplicate_just_inside_radius_due_north_is_found_by_the_search_box():
    candidate = Candidate("c", *offset(LON, LAT, 0, 49.9), T0)
    assert pick_duplicate([candidate], LON, LAT, T0, POLICY) is not None  # a duplicate by rule
    assert _in_box(search_box(LON, LAT, POLICY.radius_m), candidate.lon, candidate.lat)


def test_search_box_is_centred_and_not_absurdly_large():
    min_lon, max_lon, min_lat, max_lat = search_box(LON, LAT, 50)
    assert min_lon < LON < max_lon and min_lat < LAT < max_lat
    assert (min_lon + max_lon) / 2 == pytest.approx(LON)
    assert (min_lat + max_lat) / 2 == pytest.approx(LAT)
    # no more than a few percent larger than the circle it contains
    assert metres_between(min_lon, LAT, max_lon, LAT) < 2 * 50 * 1.05
    assert metres_between(LON, min_lat, LON, max_lat) < 2 * 50 * 1.05


# Router -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def router() -> Router:
    return Router("taicang", default_city_locator(), SquadZones.demo("taicang"), POLICIES)


def test_taicang_point_is_routed_to_a_taicang_squad(router):
    r = router.route(121.1012, 31.4521)
    assert (r.city, r.status) == ("taicang", "routed")
    taicang_squads = {z.squad for z in SquadZones.demo("taicang")}
    assert r.squad in taicang_squads
    assert r.squad == "taicang-chengxiang"
    assert r.to_city is None


def test_jiading_point_is_handed_over(router):
    r = router.route(121.1630, 31.3790)
    assert r.status == "handed_over"
    assert r.city == "jiading"
    assert r.to_city == "jiading"
    assert r.squad is None


def test_jiading_router_keeps_a_jiading_point(router):
    jiading = Router("jiading", router.locator, SquadZones.demo("taicang"), POLICIES)
    r = jiading.route(121.1630, 31.3790)
    assert (r.city, r.status, r.to_city) == ("jiading", "routed", None)


def test_point_outside_the_five_cities_raises(router):
    with pytest.raises(OutsideJurisdiction) as info:
        router.route(121.49, 31.23)  # Huangpu, Shanghai
    assert "location" in info.value.errors
    assert info.value.errors["location"]


# can_see / require_role / check_decision --------------------------------------------------------

SOURCE = {"org_id": "org-a", "org_name": "Camera Co", "roles": ["source"], "city": "taicang"}
BUREAU = {"org_id": "org-b", "org_name": "Bureau", "roles": ["bureau"], "city": "taicang"}


def test_source_sees_only_its_own_leads():
    assert can_see(SOURCE, "org-a")
    assert not can_see(SOURCE, "org-z")


@pytest.mark.parametrize("role", ["bureau", "squad", "supervisor"])
def test_city_wide_roles_see_every_lead(role):
    caller = {**SOURCE, "roles": [role]}
    assert can_see(caller, "org-z")


def test_source_may_not_decide():
    with pytest.raises(Forbidden) as info:
        require_role(SOURCE, DECIDE_ROLES, "decide on a lead")
    assert "roles" in info.value.errors
    assert "decide on a lead" in info.value.detail


def test_caller_without_roles_is_forbidden():
    with pytest.raises(Forbidden, match="none"):
        require_role({**SOURCE, "roles": []}, SUBMIT_ROLES, "submit leads")


def test_allowed_roles_pass():
    require_role(BUREAU, DECIDE_ROLES, "decide on a lead")
    require_role(SOURCE, SUBMIT_ROLES, "submit leads")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_needs_a_reason(reason):
    with pytest.raises(InvalidInput) as info:
        check_decision("reject", reason)
    assert "reason" in info.value.errors


def test_reject_with_reason_and_accept_without_reason_pass():
    check_decision("reject", "duplicate of a case already open")
    check_decision("accept", None)
    check_decision("accept", "")
