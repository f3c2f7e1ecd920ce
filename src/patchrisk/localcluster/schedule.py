"""CronJob schedules: the five cron fields (minute hour day-of-month month day-of-week) with
``*``, ``*/n``, ``a-b``, ``a-b/n`` and lists, and the next time one fires in the CronJob's
``timeZone``. Pure; the scheduler process (scheduler.py) uses it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))


class ScheduleError(ValueError):
    pass


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        try:
            every = int(step) if step else 1
            if span == "*":
                start, end = low, high
            elif "-" in span:
                start, end = (int(v) for v in span.split("-", 1))
            else:
                start = end = int(span)
                end = high if step else end
        except ValueError:
            raise ScheduleError(f"{name} field {text!r}: not a number, range or */step") from None
        if every < 1 or not low <= start <= end <= high:
            raise ScheduleError(f"{name} field {text!r}: outside {low}-{high}")
        values.update(range(start, end + 1, every))
    if name == "day of week" and 7 in values:
        values.add(0)
    return values


def parse(schedule: str) -> list[set[int]]:
    parts = schedule.split()
    if len(parts) != 5:
        raise ScheduleError(f"schedule {schedule!r}: expected 5 fields (minute hour day month weekday)")
    return [_field(p, n, lo, hi if n != "day of week" else 7) for p, (n, lo, hi) in zip(parts, FIELDS, strict=True)]


def next_fire(schedule: str, after: dt.datetime, time_zone: str = "UTC") -> dt.datetime:
    """The first minute strictly after ``after`` (aware) matching ``schedule`` in ``time_zone``."""
    minutes, hours, days, months, weekdays = parse(schedule)
    restricted_day, restricted_weekday = schedule.split()[2] != "*", schedule.split()[4] != "*"
    t = after.astimezone(ZoneInfo(time_zone)).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    for _ in range(366 * 24 * 60):
        day_ok = t.day in days
        weekday_ok = (t.isoweekday() % 7) in weekdays
        # cron: when both day fields are restricted, either may match
        day_match = (day_ok or weekday_ok) if (restricted_day and restricted_weekday) else (day_ok and weekday_ok)
        if t.month in months and day_match and t.hour in hours and t.minute in minutes:
            return t
        t += dt.timedelta(minutes=1)
    raise ScheduleError(f"schedule {schedule!r} never fires")
