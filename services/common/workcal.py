"""Working time in Asia/Shanghai: official holidays and adjusted working days (调休上班).

Deadlines of the supervision service count working hours (see `WorkCalendar.add` and
`WorkCalendar.between`). Where the schedule of a year comes from, first match wins:

1. **loaded**: the State Council's notice for that year, loaded by an operator as data
   (`liandong calendar load --city X FILE`, stored in `supervision.calendar_years`; file format
   in `parse_year`). A loaded year also overrides the package, e.g. to correct it.
2. **package**: the `chinese-calendar` package (1.11.0 knows 2004–2026 and raises after).
3. **fallback**: weekends off, plus the statutory holidays that fall on fixed Gregorian dates
   (元旦 1 Jan; 劳动节 1–2 May; 国庆节 1–3 Oct). Lunar holidays (春节, 清明, 端午, 中秋) and
   the adjusted working days exist only once the notice is published, so the fallback misses
   them: a deadline may fall on what turns out to be a holiday, or skip an adjusted working
   Saturday. Each year served by the fallback is logged once as a warning (`working calendar
   fallback`); load the year to end it.

Asia/Shanghai has had no daylight saving time since 1991, so a fixed UTC+8 offset is exact for
every date a deadline can have, and needs no tz database in the image.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import chinese_calendar

from services.common.logging import get_logger

log = get_logger(__name__)

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_PERIODS = "08:30-12:00,13:30-17:30"  # office hours of a working day (7.5 h)
MAX_SEARCH_DAYS = 3660

FALLBACK_HOLIDAYS = (  # statutory holidays on fixed Gregorian dates (全国年节及纪念日放假办法)
    (1, 1, "元旦 New Year's Day"),
    (5, 1, "劳动节 Labour Day"),
    (5, 2, "劳动节 Labour Day"),
    (10, 1, "国庆节 National Day"),
    (10, 2, "国庆节 National Day"),
    (10, 3, "国庆节 National Day"),
)


def _package_years() -> tuple[int, int]:
    days = list(chinese_calendar.holidays)
    return min(days).year, max(days).year


PACKAGE_FIRST_YEAR, PACKAGE_LAST_YEAR = _package_years()


@dataclass(frozen=True)
class YearSchedule:
    """The official schedule of one year: days off that would be working days, and adjusted
    working days (usually weekends) that would be days off."""

    year: int
    holidays: Mapping[date, str]
    workdays: Mapping[date, str] = field(default_factory=dict)
    source: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "source": self.source,
            "holidays": [{"date": d.isoformat(), "name": n}
                         for d, n in sorted(self.holidays.items())],
            "workdays": [{"date": d.isoformat(), "name": n}
                         for d, n in sorted(self.workdays.items())],
        }


def _dates(item: Any, year: int, what: str) -> tuple[list[date], str]:
    """One entry of a schedule: `"2027-01-01"`, `{date, name}` or `{from, to, name}`."""
    if isinstance(item, str | date):
        item = {"date": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"{what}: expected a date or an object, got {item!r}")
    name = str(item.get("name") or "")

    def as_date(value) -> date:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None

    if "date" in item:
        days = [as_date(item["date"])]
    elif "from" in item and "to" in item:
        first, last = as_date(item["from"]), as_date(item["to"])
        if last < first or (last - first).days > 31:
            raise ValueError(f"{what}: bad range {first} .. {last}")
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    else:
        raise ValueError(f"{what}: needs `date`, or `from` and `to`")
    for d in days:
        if d.year != year:
            raise ValueError(f"{what}: {d} is not in {year}")
    return days, name


def parse_year(doc: Mapping[str, Any]) -> YearSchedule:
    """Validate a year's schedule as an operator writes it (JSON or YAML):

        year: 2027
        source: 国务院办公厅关于2027年部分节假日安排的通知
        holidays:                      # days off (放假)
          - {from: 2027-01-01, to: 2027-01-03, name: 元旦}
          - {date: 2027-04-05, name: 清明节}
        workdays:                      # adjusted working days (调休上班)
          - {date: 2027-02-20, name: 春节调休}
    """
    if not isinstance(doc, Mapping):
        raise ValueError("a year's schedule must be an object with year, holidays, workdays")
    year = doc.get("year")
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise ValueError(f"year: expected a year between 2000 and 2100, got {year!r}")
    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    for key, target in (("holidays", holidays), ("workdays", workdays)):
        items = doc.get(key) or []
        if not isinstance(items, list):
            raise ValueError(f"{key}: expected a list")
        for i, item in enumerate(items):
            days, name = _dates(item, year, f"{key}[{i}]")
            for d in days:
                target[d] = name
    if not holidays:
        raise ValueError("holidays: a year without holidays is not an official schedule")
    both = sorted(set(holidays) & set(workdays))
    if both:
        raise ValueError(f"both a holiday and a working day: {', '.join(map(str, both))}")
    return YearSchedule(year, holidays, workdays, str(doc.get("source") or ""))


def load_year_file(path: str | Path) -> YearSchedule:
    """A year's schedule from a .json, .yaml or .yml file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    return parse_year(doc)


def parse_periods(spec: str | Iterable[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    """`"08:30-12:00,13:30-17:30"` → ((08:30, 12:00), (13:30, 17:30)); ordered, not overlapping."""
    if not isinstance(spec, str):
        periods = tuple(spec)
    else:
        periods = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            try:
                a, b = part.split("-")
                periods.append((time.fromisoformat(a.strip()), time.fromisoformat(b.strip())))
            except ValueError:
                raise ValueError(f"bad working period {part!r}: expected HH:MM-HH:MM") from None
        periods = tuple(periods)
    if not periods:
        raise ValueError("no working periods")
    previous_end = time(0, 0)
    for start, end in periods:
        if not start < end or start < previous_end:
            raise ValueError(f"working periods must be ordered and not overlap: {spec!r}")
        previous_end = end
    return periods


class WorkCalendar:
    """Working days and hours of Asia/Shanghai; all datetimes in and out are timezone-aware."""

    def __init__(self, periods: str | Iterable[tuple[time, time]] = DEFAULT_PERIODS,
                 years: Mapping[int, YearSchedule] | None = None):
        self.periods = parse_periods(periods)
        self.years = dict(years or {})
        self.day_hours = sum(
            (datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
            for a, b in self.periods) / 3600
        self._workday: dict[date, bool] = {}
        self._warned: set[int] = set()

    # which days are worked -----------------------------------------------------------------
    def source(self, year: int) -> str:
        if year in self.years:
            return "loaded"
        if PACKAGE_FIRST_YEAR <= year <= PACKAGE_LAST_YEAR:
            return "package"
        return "fallback"

    def is_workday(self, d: date) -> bool:
        cached = self._workday.get(d)
        if cached is None:
            cached = self._workday[d] = self._is_workday(d)
        return cached

    def _is_workday(self, d: date) -> bool:
        schedule = self.years.get(d.year)
        if schedule is not None:
            if d in schedule.holidays:
                return False
            if d in schedule.workdays:
                return True
            return d.weekday() < 5
        if PACKAGE_FIRST_YEAR <= d.year <= PACKAGE_LAST_YEAR:
            return chinese_calendar.is_workday(d)
        if d.year not in self._warned:
            self._warned.add(d.year)
            log.warning("working calendar fallback: year not loaded, past the package's range",
                        year=d.year, package_last_year=PACKAGE_LAST_YEAR,
                        rule="weekends and fixed-date statutory holidays only",
                        fix=f"liandong calendar load --city <city> <{d.year} schedule file>")
        if (d.month, d.day) in {(m, dd) for m, dd, _ in FALLBACK_HOLIDAYS}:
            return False
        return d.weekday() < 5

    def describe(self, year: int) -> dict[str, Any]:
        """The schedule in effect for `year`: its source, days off on weekdays, and working
        weekend days."""
        source = self.source(year)
        if source == "loaded":
            doc = self.years[year].to_doc()
            return {**doc, "source": "loaded", "notice": doc["source"]}
        if source == "package":
            holidays = {d: str(n or "") for d, n in chinese_calendar.holidays.items()
                        if d.year == year and d.weekday() < 5}
            workdays = {d: str(n or "") for d, n in chinese_calendar.workdays.items()
                        if d.year == year and d.weekday() >= 5}
        else:
            holidays = {date(year, m, dd): n for m, dd, n in FALLBACK_HOLIDAYS}
            workdays = {}
        doc = YearSchedule(year, holidays, workdays).to_doc()
        return {**doc, "source": source,
                "notice": f"chinese-calendar {PACKAGE_FIRST_YEAR}-{PACKAGE_LAST_YEAR}"
                if source == "package" else "fallback: weekends + fixed-date statutory holidays"}

    # working time ----------------------------------------------------------------------------
    def _day_periods(self, d: date) -> list[tuple[datetime, datetime]]:
        return [(datetime.combine(d, a, SHANGHAI), datetime.combine(d, b, SHANGHAI))
                for a, b in self.periods]

    def add(self, start: datetime, hours: float) -> datetime:
        """The instant `hours` working hours after `start` (UTC). Work consumed up to the end of
        a period ends at that period's end (17:30), not at the next period's start."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        remaining = timedelta(hours=hours)
        at = start.astimezone(SHANGHAI)
        if remaining <= timedelta(0):
            return start.astimezone(UTC)
        d = at.date()
        for _ in range(MAX_SEARCH_DAYS):
            if self.is_workday(d):
                for p_start, p_end in self._day_periods(d):
                    s = max(p_start, at)
                    if s >= p_end:
                        continue
                    available = p_end - s
                    if remaining <= available:
                        return (s + remaining).astimezone(UTC)
                    remaining -= available
            d += timedelta(days=1)
        raise ValueError(f"no {hours} working hours within {MAX_SEARCH_DAYS} days of {start}")

    def between(self, a: datetime, b: datetime) -> float:
        """Working hours in [a, b); 0 when b is not after a."""
        if a.tzinfo is None or b.tzinfo is None:
            raise ValueError("timezone-aware datetimes only")
        if b <= a:
            return 0.0
        a, b = a.astimezone(SHANGHAI), b.astimezone(SHANGHAI)
        total = timedelta(0)
        d = a.date()
        while d <= b.date():
            if self.is_workday(d):
                for p_start, p_end in self._day_periods(d):
                    s, e = max(p_start, a), min(p_end, b)
                    if e > s:
                        total += e - s
            d += timedelta(days=1)
        return total.total_seconds() / 3600
