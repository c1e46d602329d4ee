"""Working time in Asia/Shanghai: holidays, adjusted working days, office hours, and what happens
past the last year the `chinese-calendar` package knows."""

import json
from datetime import UTC, date, datetime, time

import pytest

from services.common.workcal import (
    PACKAGE_LAST_YEAR,
    SHANGHAI,
    WorkCalendar,
    load_year_file,
    parse_periods,
    parse_year,
)

CAL = WorkCalendar()


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def local(at: datetime) -> datetime:
    return at.astimezone(SHANGHAI)


def test_default_working_day_is_seven_and_a_half_hours():
    assert CAL.periods == ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    assert CAL.day_hours == 7.5


def test_2026_national_day_and_the_adjusted_working_saturday():
    # 国庆节 2026: 1-7 Oct off; Sunday 20 Sep and Saturday 10 Oct are working days (调休上班)
    assert not any(CAL.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert CAL.is_workday(date(2026, 10, 10)) and date(2026, 10, 10).weekday() == 5
    assert CAL.is_workday(date(2026, 9, 20)) and date(2026, 9, 20).weekday() == 6
    assert not CAL.is_workday(date(2026, 10, 11))  # the Sunday after stays off
    assert not CAL.is_workday(date(2026, 9, 25))  # 中秋节


def test_deadlines_across_national_day():
    start = sh(2026, 9, 30, 15, 0)  # Wednesday before the holiday
    assert local(CAL.add(start, 2.5)) == sh(2026, 9, 30, 17, 30)  # ends at the day's end
    assert local(CAL.add(start, 3)) == sh(2026, 10, 8, 9, 0)  # then after the holiday
    assert local(CAL.add(start, 2 * 7.5)) == sh(2026, 10, 9, 15, 0)
    # three working days land on the adjusted working Saturday, 10 Oct
    assert local(CAL.add(start, 3 * 7.5)) == sh(2026, 10, 10, 15, 0)
    assert local(CAL.add(start, 4 * 7.5)) == sh(2026, 10, 12, 15, 0)  # Sunday 11 Oct skipped


def test_add_skips_lunch_and_nights_and_between_inverts_it():
    assert local(CAL.add(sh(2026, 11, 26, 11, 0), 2)) == sh(2026, 11, 26, 14, 30)
    assert local(CAL.add(sh(2026, 11, 26, 20, 0), 1)) == sh(2026, 11, 27, 9, 30)
    assert local(CAL.add(sh(2026, 11, 27, 17, 0), 1)) == sh(2026, 11, 30, 9, 0)  # Fri → Mon
    for start in (sh(2026, 9, 30, 15, 0), sh(2026, 11, 26, 12, 40), sh(2026, 12, 31, 9, 0)):
        for hours in (0.25, 1, 7.5, 16, 40):
            assert CAL.between(start, CAL.add(start, hours)) == pytest.approx(hours)
    assert CAL.between(sh(2026, 10, 1, 0, 0), sh(2026, 10, 8, 0, 0)) == 0
    assert CAL.between(sh(2026, 11, 27), sh(2026, 11, 26)) == 0


def test_results_are_utc_and_naive_input_is_refused():
    assert CAL.add(sh(2026, 11, 26, 9, 0), 1).tzinfo == UTC
    with pytest.raises(ValueError):
        CAL.add(datetime(2026, 11, 26, 9, 0), 1)


def test_past_the_package_the_fallback_is_used_and_logged_once():
    from structlog.testing import capture_logs

    year = PACKAGE_LAST_YEAR + 1  # 2027 with chinese-calendar 1.11.0
    cal = WorkCalendar()
    assert cal.source(year) == "fallback"
    with capture_logs() as logs:
        # fixed-date statutory holidays and weekends are off ...
        assert not cal.is_workday(date(year, 1, 1))
        assert not cal.is_workday(date(year, 10, 2))
        saturday = date(year, 1, 2) if date(year, 1, 2).weekday() == 5 else date(year, 1, 9)
        assert not cal.is_workday(saturday)
        # ... other weekdays are working days (lunar holidays are unknown until loaded)
        weekday = next(date(year, 3, d) for d in range(1, 8) if date(year, 3, d).weekday() < 5)
        assert cal.is_workday(weekday)
        cal.is_workday(date(year, 6, 1))
    warnings = [e for e in logs if "working calendar fallback" in e["event"]]
    assert len(warnings) == 1  # once per year, not per day
    assert warnings[0]["log_level"] == "warning" and warnings[0]["year"] == year


def test_a_deadline_opened_in_late_december_runs_into_the_fallback_year():
    cal = WorkCalendar()
    # Thursday 31 Dec 2026, 16:00; 2 working days: 1.5 h left on the 31st, Friday 1 Jan is
    # 元旦 (fallback), the weekend, then Monday 4 and Tuesday 5 Jan
    due = cal.add(sh(2026, 12, 31, 16, 0), 15)
    assert local(due) == sh(2027, 1, 5, 16, 0)


def test_a_loaded_year_replaces_the_fallback_and_the_package():
    schedule = parse_year({
        "year": 2027, "source": "test notice",
        "holidays": [{"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"},
                     {"date": "2027-01-04", "name": "test day off"}],
        "workdays": [{"date": "2027-01-09", "name": "调休上班"}],
    })
    cal = WorkCalendar(years={2027: schedule})
    assert cal.source(2027) == "loaded"
    assert not cal.is_workday(date(2027, 1, 4))  # a Monday, off by the notice
    assert cal.is_workday(date(2027, 1, 9))  # a Saturday, worked by the notice
    assert local(cal.add(sh(2026, 12, 31, 16, 0), 15)) == sh(2027, 1, 6, 16, 0)
    # a loaded year may also correct a year the package knows
    fix = parse_year({"year": 2026, "holidays": [{"date": "2026-11-26"}]})
    assert not WorkCalendar(years={2026: fix}).is_workday(date(2026, 11, 26))
    assert WorkCalendar(years={2026: fix}).describe(2026)["source"] == "loaded"


@pytest.mark.parametrize("doc, error", [
    ({"year": 27, "holidays": ["2027-01-01"]}, "year"),
    ({"year": 2027, "holidays": []}, "without holidays"),
    ({"year": 2027, "holidays": ["2028-01-01"]}, "not in 2027"),
    ({"year": 2027, "holidays": ["2027-13-01"]}, "not a date"),
    ({"year": 2027, "holidays": ["2027-01-01"], "workdays": ["2027-01-01"]}, "both"),
    ({"year": 2027, "holidays": [{"from": "2027-02-10", "to": "2027-02-01"}]}, "bad range"),
])
def test_bad_schedules_are_refused(doc, error):
    with pytest.raises(ValueError, match=error):
        parse_year(doc)


def test_schedule_files_in_yaml_and_json(tmp_path):
    yaml_file = tmp_path / "2027.yaml"
    yaml_file.write_text("year: 2027\nsource: 国务院办公厅通知\nholidays:\n"
                         "  - {from: 2027-01-01, to: 2027-01-03, name: 元旦}\n"
                         "workdays:\n  - 2027-01-09\n", encoding="utf-8")
    s = load_year_file(yaml_file)
    assert (s.year, len(s.holidays), list(s.workdays)) == (2027, 3, [date(2027, 1, 9)])
    json_file = tmp_path / "2027.json"
    json_file.write_text(json.dumps(s.to_doc(), ensure_ascii=False), encoding="utf-8")
    assert load_year_file(json_file) == s


def test_describe_says_where_a_year_comes_from():
    d = CAL.describe(2026)
    assert d["source"] == "package"
    assert {"date": "2026-10-10", "name": "National Day"} in d["workdays"]
    assert CAL.describe(PACKAGE_LAST_YEAR + 1)["source"] == "fallback"


@pytest.mark.parametrize("spec", ["", "9-12", "12:00-08:00", "08:00-12:00,11:00-13:00"])
def test_bad_working_periods_are_refused(spec):
    with pytest.raises(ValueError):
        parse_periods(spec)


def test_other_office_hours():
    cal = WorkCalendar("09:00-12:00,13:00-18:00")
    assert cal.day_hours == 8
    assert local(cal.add(sh(2026, 11, 26, 9, 0), 8)) == sh(2026, 11, 26, 18, 0)
