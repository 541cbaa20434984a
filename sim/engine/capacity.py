"""A department with limited slots: imaging and operating lists that patients queue for.

Each kind of slot is a `simpy.Resource` whose capacity is the number of slots a week: a scan or an
operation requests one and holds it for a week (a slot of the weekly list), so at most that many
start in any week; a patient who finds none free waits, first come first served. Waits are
recorded. This is the one thing a vectorized microsimulation cannot do, and the reason the engine
is a discrete-event one: a patient's wait depends on every other patient's schedule.
"""

from __future__ import annotations

import math

import simpy

__all__ = ["Department", "WEEK_MONTHS"]

WEEK_MONTHS = 12.0 / 52.0


class _Slots:
    def __init__(self, env: simpy.Environment, per_week: float):
        self.env = env
        self.resource = simpy.Resource(env, capacity=max(1, math.floor(per_week)))
        self.waits: list[float] = []
        self.asked: list[float] = []     # when each wait began (months from the department's start)
        self.busy_months = 0.0

    def take(self):
        """A generator for `yield from`: waits for a slot, returns the wait in months. The slot
        stays taken for a week, by a small process of its own (the patient moves on)."""
        asked = self.env.now
        request = self.resource.request()
        yield request
        self.env.process(self._hold(request))
        self.waits.append(self.env.now - asked)
        self.asked.append(asked)
        return self.env.now - asked

    def _hold(self, request):
        yield self.env.timeout(WEEK_MONTHS)
        self.resource.release(request)
        self.busy_months += WEEK_MONTHS


class Department:
    """Imaging and operating slots per week; a kind left out (None) never makes anyone wait."""

    def __init__(self, env: simpy.Environment, imaging_per_week: float | None,
                 operating_per_week: float | None):
        self.env = env
        self.imaging = _Slots(env, imaging_per_week) if imaging_per_week else None
        self.operating = _Slots(env, operating_per_week) if operating_per_week else None

    def scan(self):
        if self.imaging is None:
            return 0.0
        return (yield from self.imaging.take())

    def operate(self):
        if self.operating is None:
            return 0.0
        return (yield from self.operating.take())

    def report(self) -> dict:
        """Waits (months) and when each began, slots used, slots a week, and slot-weeks offered
        over the department's active time."""
        out = {}
        for name, slots in (("imaging", self.imaging), ("operating", self.operating)):
            if slots is not None:
                offered = slots.resource.capacity * self.env.now / WEEK_MONTHS
                out[name] = {"waits": slots.waits, "asked": slots.asked, "used": len(slots.waits),
                             "per_week": slots.resource.capacity, "offered": offered}
        return out
