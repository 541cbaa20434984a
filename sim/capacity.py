"""A department with limited slots: imaging and operating lists that patients queue for.

Each kind of slot is a `simpy.Container` of tokens refilled to its weekly number at the start of
every week (a refill process per kind): a scan or an operation takes one token, and a patient who
finds none waits for the next week's refill, first come first served. Waits are recorded. This is
the one thing a vectorized microsimulation cannot do, and the reason the engine is a
discrete-event one: a patient's wait depends on every other patient's schedule.
"""

from __future__ import annotations

import simpy

__all__ = ["Department", "WEEK_MONTHS"]

WEEK_MONTHS = 12.0 / 52.0


class _Slots:
    def __init__(self, env: simpy.Environment, per_week: float):
        self.env = env
        self.per_week = per_week
        self.tokens = simpy.Container(env, init=per_week, capacity=per_week)
        self.waits: list[float] = []
        self.used = 0
        self.offered = per_week
        self.refill = env.process(self._refill())

    def _refill(self):
        while True:
            yield self.env.timeout(WEEK_MONTHS)
            if self.tokens.level < self.per_week:
                yield self.tokens.put(self.per_week - self.tokens.level)
            self.offered += self.per_week

    def take(self):
        """A generator for `yield from`: waits for a slot, returns the wait in months."""
        asked = self.env.now
        yield self.tokens.get(1)
        self.used += 1
        self.waits.append(self.env.now - asked)
        return self.env.now - asked


class Department:
    """Imaging and operating slots per week; a kind left out (None) never makes anyone wait."""

    def __init__(self, env: simpy.Environment, imaging_per_week: float | None,
                 operating_per_week: float | None):
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
        """Waits (months) and utilisation (slots used / slots offered) of each kind."""
        out = {}
        for name, slots in (("imaging", self.imaging), ("operating", self.operating)):
            if slots is not None:
                out[name] = {"waits": slots.waits, "used": slots.used, "offered": slots.offered}
        return out
