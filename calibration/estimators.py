"""The study's estimators, applied to a simulated patient table with `sim.analysis`.

`estimate(patients, targets, studies=k)` returns, for every target, the figure on the whole
cohort and on each of k pseudo-studies (patients split by ``patient_id % k``): the whole-cohort
value is the model's figure, the spread across pseudo-studies is its sampling spread in a study of
that size. Both come from one vectorized call per target: the rows are stacked twice, once in
group -1 (the whole cohort) and once in their pseudo-study, and `sim.analysis` handles all groups
in one pass.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from calibration.targets import Target
from sim.analysis import cox_univariate, kaplan_meier, median_survival, survival_at

__all__ = ["estimate", "mask"]

_ENDPOINTS = {"os": ("os_months", "death"), "dfs": ("dfs_months", "dfs_event")}


def mask(frame: pd.DataFrame, expression: str | None) -> np.ndarray:
    """Rows where a pandas expression on the patient table holds (all rows if none)."""
    if not expression:
        return np.ones(len(frame), dtype=bool)
    # only the columns the expression names (pandas builds a Series for every column it is given)
    named = [c for c in dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression))
             if c in frame.columns]
    return np.asarray(frame[named].eval(expression, engine="python"), dtype=bool)


def _site_times(frame: pd.DataFrame, site: str) -> tuple[np.ndarray, np.ndarray]:
    """Time to first detection at `site`, censored at death or last follow-up (other events
    do not stop follow-up for this site: the paper's 1 - Kaplan-Meier by site)."""
    at_site = frame[f"{site}_recurrence_months"].to_numpy(dtype=float)
    seen = ~np.isnan(at_site)
    return np.where(seen, at_site, frame["os_months"].to_numpy(dtype=float)), seen


def _flag(frame: pd.DataFrame, target: Target) -> np.ndarray:
    """The per-patient indicator a share counts."""
    column = frame[target.column]
    if target.equals is not None:
        return (column == target.equals).to_numpy()
    if target.one_of is not None:
        return column.isin(target.one_of).to_numpy()
    if target.includes is not None:
        return column.fillna("").str.contains(rf"(?:^|\+){target.includes}(?:\+|$)").to_numpy(bool)
    if target.column.endswith("_months"):
        return column.notna().to_numpy()
    return column.astype(bool).to_numpy()


def _by_group(values: np.ndarray, groups: np.ndarray, codes: np.ndarray, how: str) -> np.ndarray:
    out = np.full(len(codes), np.nan)
    if how == "mean":
        count = np.bincount(groups, minlength=len(codes))
        total = np.bincount(groups, values, minlength=len(codes))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(count > 0, total / count, np.nan)
        return out
    frame = pd.DataFrame({"g": groups, "v": values})
    stats = frame.groupby("g")["v"].quantile(float(how)) if how != "median" else \
        frame.groupby("g")["v"].median()
    out[stats.index.to_numpy()] = stats.to_numpy()
    return out


def _one(frame: pd.DataFrame, target: Target, groups: np.ndarray, n_codes: int) -> np.ndarray:
    """The figure for every group code 0..n_codes-1 (code 0 is the whole cohort)."""
    kind = target.estimator
    keep = mask(frame, target.where)
    if kind in ("share_among", "composition") and target.among:
        keep &= mask(frame, target.among)
    sub, g = frame[keep], groups[keep]
    codes = np.arange(n_codes)
    if kind in ("crude_share", "share_among", "composition"):
        return _by_group(_flag(sub, target).astype(float), g, codes, "mean")
    if kind in ("median", "quantile"):
        how = "median" if kind == "median" else target.quantile
        return _by_group(sub[target.column].to_numpy(dtype=float), g, codes, how)
    if kind == "cox_univariate":
        if target.endpoint in _ENDPOINTS:
            duration, event = _ENDPOINTS[target.endpoint]
            time, seen = sub[duration].to_numpy(float), sub[event].to_numpy(bool)
        else:
            time, seen = _site_times(sub, target.endpoint)
        table = cox_univariate(np.maximum(time, 1e-6), seen, mask(sub, target.covariate).astype(float),
                               groups={"g": g})
        return _scatter(table, "hr", codes)
    if kind == "one_minus_km_site":
        time, seen = _site_times(sub, target.site)
        table = survival_at(kaplan_meier(time, seen, groups={"g": g}), [target.at_months])
        return 1.0 - _scatter(table, "survival", codes)
    if kind == "km_from":
        has = sub[target.origin].notna().to_numpy()
        sub, g = sub[has], g[has]
        time = (sub[target.duration] - sub[target.origin]).to_numpy(float)
        table = survival_at(kaplan_meier(time, sub[target.event].to_numpy(bool), groups={"g": g}),
                            [target.at_months])
        return _scatter(table, "survival", codes)
    time, seen = sub[target.duration].to_numpy(float), sub[target.event].to_numpy(bool)
    if kind == "km":
        table = survival_at(kaplan_meier(time, seen, groups={"g": g}), [target.at_months])
        return _scatter(table, "survival", codes)
    if kind == "km_median":
        table = median_survival(kaplan_meier(time, seen, groups={"g": g}))
        return np.where(np.isfinite(_scatter(table, "median", codes)),
                        _scatter(table, "median", codes), np.nan)
    raise ValueError(f"unknown estimator {kind!r}")


def _scatter(table: pd.DataFrame, column: str, codes: np.ndarray) -> np.ndarray:
    out = np.full(len(codes), np.nan)
    if len(table):
        out[table["g"].to_numpy(dtype=int)] = table[column].to_numpy(dtype=float)
    return out


def estimate(patients: pd.DataFrame, targets: list[Target], studies: int = 0) -> pd.DataFrame:
    """Model figures: one row per target, column ``model`` (whole cohort) and, with `studies`,
    ``study_0 .. study_{k-1}`` (pseudo-studies of about ``len(group) / k`` patients)."""
    rows = []
    for target in targets:
        frame = patients
        if target.group != "both":
            frame = patients[patients["primary_site"] == target.group]
        n = len(frame)
        if studies:
            stacked = pd.concat([frame, frame], ignore_index=True)
            pseudo = 1 + frame["patient_id"].to_numpy() % studies
            groups = np.concatenate([np.zeros(n, int), pseudo])
        else:
            stacked, groups = frame.reset_index(drop=True), np.zeros(n, int)
        values = _one(stacked, target, groups, 1 + studies) if n else np.full(1 + studies, np.nan)
        rows.append([target.id, *values])
    columns = ["id", "model"] + [f"study_{k}" for k in range(studies)]
    return pd.DataFrame(rows, columns=columns).set_index("id")
