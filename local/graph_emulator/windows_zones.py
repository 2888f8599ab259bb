"""Windows time zones Graph accepts that CLDR's windowsZones mapping leaves out.

CLDR maps only current Windows zones to IANA names; Windows (and so Graph and Exchange) still
lists older ones such as "(UTC-02:00) Mid-Atlantic - Old" and "(UTC+12:00) Petropavlovsk-Kamchatsky
- Old". A mailbox can be set to them, and a client may write an event in them, so the emulator
must read them as Windows defines them:

- "Kamchatka Standard Time": UTC+12 without daylight saving since 2011, which is IANA's
  Asia/Kamchatka for every instant the service deals with.
- "Mid-Atlantic Standard Time": UTC-2, with daylight saving (UTC-1) from the last Sunday of
  March, 02:00, to the last Sunday of September, 02:00, local time (the zone's rule in the Windows
  time zone registry). No IANA zone keeps that rule, so it is written out here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

LAST = 5  # Windows' "week 5": the last such weekday of the month
SUNDAY = 6


@dataclass(frozen=True)
class Transition:
    """A yearly wall-clock moment: the n-th (or last) weekday of a month, at an hour."""

    month: int
    week: int
    weekday: int  # Monday = 0 … Sunday = 6
    hour: int

    def on(self, year: int) -> datetime:
        if self.week == LAST:
            day = calendar.monthrange(year, self.month)[1]
            moment = datetime(year, self.month, day, self.hour)
            while moment.weekday() != self.weekday:
                moment -= timedelta(days=1)
            return moment
        moment = datetime(year, self.month, 1, self.hour)
        while moment.weekday() != self.weekday:
            moment += timedelta(days=1)
        return moment + timedelta(weeks=self.week - 1)


class AnnualRuleZone(tzinfo):
    """A zone with one daylight-saving rule every year, as Windows describes its zones: a
    standard offset, a daylight offset, and the local times daylight saving starts (read in
    standard time) and ends (read in daylight time). Northern-hemisphere rules only."""

    def __init__(
        self,
        name: str,
        standard: timedelta,
        daylight: timedelta,
        start: Transition,
        end: Transition,
    ) -> None:
        super().__init__()
        self._name = name
        self._standard = standard
        self._daylight = daylight
        self._start = start
        self._end = end

    def __repr__(self) -> str:
        return f"AnnualRuleZone({self._name!r})"

    def _in_daylight(self, local: datetime) -> bool:
        """Daylight time at this wall-clock time? `fold` picks within the skipped and the repeated
        hour, as PEP 495 says (0: the offset before the change)."""
        wall = local.replace(tzinfo=None, fold=0)
        start, end = self._start.on(wall.year), self._end.on(wall.year)
        shift = self._daylight - self._standard
        if start <= wall < start + shift:  # skipped at the spring change
            return local.fold == 1
        if end - shift <= wall < end:  # repeated at the autumn change
            return local.fold == 0
        return start <= wall < end

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return self._standard
        return self._daylight if self._in_daylight(dt) else self._standard

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - self._standard

    def tzname(self, dt: datetime | None) -> str:
        return self._name

    def fromutc(self, dt: datetime) -> datetime:
        utc = dt.replace(tzinfo=None)
        start_utc = self._start.on(utc.year) - self._standard
        end_utc = self._end.on(utc.year) - self._daylight
        in_daylight = start_utc <= utc < end_utc
        local = utc + (self._daylight if in_daylight else self._standard)
        end = self._end.on(local.year)
        repeated = not in_daylight and end - (self._daylight - self._standard) <= local < end
        return local.replace(tzinfo=self, fold=1 if repeated else 0)


MID_ATLANTIC = AnnualRuleZone(
    "Mid-Atlantic Standard Time",
    standard=timedelta(hours=-2),
    daylight=timedelta(hours=-1),
    start=Transition(month=3, week=LAST, weekday=SUNDAY, hour=2),
    end=Transition(month=9, week=LAST, weekday=SUNDAY, hour=2),
)

# Keyed by the lower-cased Windows name.
WINDOWS_ONLY_ZONES: dict[str, tzinfo] = {
    "mid-atlantic standard time": MID_ATLANTIC,
    "kamchatka standard time": ZoneInfo("Asia/Kamchatka"),
}
