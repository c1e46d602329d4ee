"""An operator loads a year's official schedule as data (`liandong calendar load`); the running
supervision service uses it for deadlines instead of the logged fallback, within
CALENDAR_REFRESH_SECONDS (1 s in the test platform)."""

from datetime import datetime

import pytest
from sqlalchemy import text
from support import TEST_SITE, deadline, open_case, supervision_of, wait_for

from liandong import cli
from services.common.workcal import SHANGHAI

pytestmark = pytest.mark.integration

YEAR = 2031  # far past the package's last year, so no other test depends on it
SCHEDULE = f"""# test schedule, not an official notice
year: {YEAR}
source: 测试通知 test notice
holidays:
  - {{from: {YEAR}-01-01, to: {YEAR}-01-03, name: 元旦}}
workdays:
  - {{date: {YEAR}-01-04, name: 元旦调休}}
"""


@pytest.fixture
def run_cli(monkeypatch, capsys):
    monkeypatch.setenv("LIANDONG_DB_PREFIX", TEST_SITE.db_prefix)

    def run(*args) -> tuple[int, str]:
        code = cli.main(list(args))
        return code, capsys.readouterr().out

    return run


@pytest.fixture
def frozen_at_new_years_eve(platform):
    platform.rpc("taicang", "cases", "set_clock",
                 datetime(YEAR - 1, 12, 31, 16, 0, tzinfo=SHANGHAI).isoformat(), "frozen")
    yield
    platform.rpc("taicang", "cases", "set_clock", None)
    with platform.engine("taicang").begin() as conn:
        conn.execute(text("DELETE FROM supervision.calendar_years WHERE year = :y"), {"y": YEAR})


def response_due(platform) -> str:
    case = open_case(platform)  # 2 working hours from 31 Dec 16:00: 1.5 h that day, then 0.5
    loop = supervision_of(platform, case["id"], lambda lp: deadline(lp, "response"))
    return deadline(loop, "response")["due_at"]


def test_a_loaded_year_replaces_the_fallback(platform, run_cli, tmp_path,
                                             frozen_at_new_years_eve):
    code, out = run_cli("calendar", "show", "--city", "taicang", "--year", str(YEAR))
    assert code == 0 and f"{YEAR}: fallback" in out
    # fallback: 1 Jan is off (fixed date), 2 Jan (a Thursday) is worked
    assert response_due(platform) == f"{YEAR}-01-02T01:00:00Z"

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"year: {YEAR}\nholidays: [{YEAR + 1}-01-01]\n")
    with pytest.raises(ValueError, match="not in"):
        run_cli("calendar", "load", "--city", "taicang", str(bad))
    good = tmp_path / f"{YEAR}.yaml"
    good.write_text(SCHEDULE, encoding="utf-8")
    code, out = run_cli("calendar", "load", "--city", "taicang", str(good))
    assert code == 0 and "3 days off, 1 adjusted working days" in out
    code, out = run_cli("calendar", "show", "--city", "taicang", "--year", str(YEAR))
    assert f"{YEAR}: loaded" in out and f"working  {YEAR}-01-04  元旦调休" in out

    # loaded: 1-3 Jan off, Saturday 4 Jan worked. The service re-reads loaded years every
    # CALENDAR_REFRESH_SECONDS (1 s here): a case opened after that is due on the 4th.
    wait_for(lambda: response_due(platform) == f"{YEAR}-01-04T01:00:00Z", timeout=15,
             interval=0.5, what="the loaded year to be used")
