"""A cohort's one-screen summary, accumulated unit by unit in bounded memory.

Counts per primary site, and the observed times as histograms of 0.01-month bins, all patients
and those censored alive apart: the median follow-up (reverse Kaplan–Meier: the censoring is the
event, a death censors) and the median observed time are exact to 0.01 month whatever the number
of patients. Tallies of units add up.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["Tally", "tally_of", "merge", "render"]

_BIN_MONTHS = 0.01
_BINS = 120_000  # 1,200 months
_SITES = ("pelvis", "liver", "lung", "other")

Tally = dict  # {"rectum": {"patients": int, ..., "followup_histogram": {bin: count}}, ...}


def tally_of(patients: pa.Table) -> Tally:
    frame = {name: patients.column(name).to_numpy(zero_copy_only=False) for name in (
        "primary_site", "os_months", "death", "recurrence", "curative_reoperation_months",
        "n_scans", *[f"{s}_recurrence_months" for s in _SITES])}
    result: Tally = {}
    for site in ("rectum", "colon"):
        m = frame["primary_site"] == site
        if not m.any():
            continue
        bins = np.minimum((frame["os_months"][m] / _BIN_MONTHS).astype(np.int64), _BINS - 1)
        values, counts = np.unique(bins, return_counts=True)
        alive, alive_counts = np.unique(bins[~frame["death"][m]], return_counts=True)
        result[site] = {
            "patients": int(m.sum()), "deaths": int(frame["death"][m].sum()),
            "recurrences": int(frame["recurrence"][m].sum()),
            **{f"{s}_recurrences": int((~np.isnan(frame[f"{s}_recurrence_months"][m])).sum())
               for s in _SITES},
            "curative_reoperations": int((~np.isnan(frame["curative_reoperation_months"][m])).sum()),
            "scans": int(frame["n_scans"][m].sum()),
            "followup_histogram": dict(zip(values.tolist(), counts.tolist())),
            "censored_histogram": dict(zip(alive.tolist(), alive_counts.tolist())),
        }
    return result


def merge(tallies) -> Tally:
    total: Tally = {}
    for one in tallies:
        for site, counts in one.items():
            into = total.setdefault(site, {"followup_histogram": {}, "censored_histogram": {}})
            for key, value in counts.items():
                if key.endswith("_histogram"):
                    for b, c in value.items():
                        into[key][int(b)] = into[key].get(int(b), 0) + c
                else:
                    into[key] = into.get(key, 0) + value
    return total


def _median(histogram: dict) -> float:
    bins = np.array(sorted(histogram))
    counts = np.array([histogram[b] for b in bins])
    half = counts.sum() / 2
    return float(bins[np.searchsorted(np.cumsum(counts), half)] * _BIN_MONTHS)


def _reverse_km_median(histogram: dict, censored: dict) -> float:
    """Median follow-up: the reverse Kaplan–Meier median (censoring alive is the event, death
    censors; at a tied bin the censorings count first, as events do in Kaplan–Meier); nan if
    it is not reached."""
    bins = np.array(sorted(histogram))
    removed = np.array([histogram[b] for b in bins])
    events = np.array([censored.get(b, 0) for b in bins])
    at_risk = removed.sum() - np.concatenate([[0], np.cumsum(removed)[:-1]])
    survival = np.cumprod(1.0 - events / at_risk)
    reached = np.flatnonzero(survival <= 0.5)
    return float(bins[reached[0]] * _BIN_MONTHS) if len(reached) else float("nan")


def _followup(t: dict) -> str:
    median = _reverse_km_median(t["followup_histogram"], t["censored_histogram"])
    return "not reached (no one censored alive)" if np.isnan(median) else f"{median:.1f} months"


def render(total: Tally, out) -> str:
    lines = [f"crlm-sim cohort written to {out}"]
    n = 0
    for site in ("rectum", "colon"):
        if site not in total:
            continue
        t = total[site]
        k = t["patients"]
        n += k
        by_site = ", ".join(f"{s} {t[f'{s}_recurrences']}" for s in _SITES)
        lines += [
            f"  {site}: {k} patients, {t['deaths']} deaths ({100 * t['deaths'] / k:.1f}%), "
            f"median follow-up {_followup(t)} (reverse Kaplan–Meier); median observed time "
            f"{_median(t['followup_histogram']):.1f} months",
            f"    recurrences {t['recurrences']} ({100 * t['recurrences'] / k:.1f}%); by site: {by_site}",
            f"    curative repeat operations {t['curative_reoperations']}; surveillance visits per "
            f"patient {t['scans'] / k:.1f}",
        ]
    lines.append(f"  total: {n} patients")
    return "\n".join(lines)
