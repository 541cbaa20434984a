"""The validation report: the model against every figure of the study and the external ones, as
tables and pictures.

A cohort is simulated under the study's design from the installed defaults (or a given parameter
file): `rectal_studies` x 141 rectal and `colon_studies` x 441 colon patients. Every figure is
estimated the study's way (`calibration.estimators`, i.e. `sim.analysis`) on the whole cohort
(the model's value) and on each pseudo-study of the paper's size (its 95% interval and spread in a
study like the paper's). The external figures (`calibration.external`) are estimated on their
own cohorts and set beside the published value and its 95% interval from the published counts.
Writes ``validation.csv``, ``report.md``, a self-contained ``report.html`` (figures inlined) and
the figures as PNG.
"""

from __future__ import annotations

import base64
import html
import math
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from calibration.estimators import estimate
from calibration.external import (ExternalDesign, external_figures, load_external_targets,
                                  simulate_external)
from calibration.objective import StudyDesign, simulate_study
from calibration.targets import load_targets, log_hr_standard_error
from sim.analysis import kaplan_meier, survival_at
from sim.reports.figures import png_bytes
from sim.reports.text import number
from sim.model.params import load_params
from sim.model.policy import load_policy

__all__ = ["write_report", "validation_table", "kept_aside_table"]

_GRID = np.arange(0.0, 121.0, 3.0)


def validation_table(patients: pd.DataFrame, rectal_studies: int, colon_studies: int) -> pd.DataFrame:
    """One row per figure (fitted, checked, or withheld with an estimator): reported value,
    model value, the model's 95% interval for a study of the paper's size, spread, z."""
    rows = []
    targets = [t for t in load_targets() if t.estimator and t.use in ("fit", "check", "withheld")]
    for group, studies in (("rectum", rectal_studies), ("colon", colon_studies)):
        chosen = [t for t in targets if t.group == group]
        table = estimate(patients, chosen, studies=studies)
        for t in chosen:
            per = table.loc[t.id].drop("model").to_numpy(dtype=float)
            per = per[np.isfinite(per)]
            model = float(table.loc[t.id, "model"])
            lo, hi = (np.percentile(per, [2.5, 97.5]) if len(per) > 2 else (math.nan, math.nan))
            if t.estimator == "cox_univariate":
                spread = log_hr_standard_error(t)
                z = (math.log(model) - math.log(t.value)) / spread if model > 0 else math.nan
                verdict = "inside CI" if t.lo <= model <= t.hi else "outside CI"
            else:
                spread = float(np.std(per, ddof=1)) if len(per) > 2 else math.nan
                z = (model - t.value) / spread if t.value is not None and spread > 0 else math.nan
                verdict = "" if t.value is None else ("ok" if abs(z) <= 1.96 else "miss")
            if t.bound == "lower" and z > 0 or t.bound == "upper" and z < 0:
                z, verdict = 0.0, "ok (bound)"
            rows.append({
                "id": t.id, "label": t.label or t.id, "topic": _topic(t), "section": t.section,
                "use": t.use, "group": group, "estimator": t.estimator,
                "reported": t.value, "reported_lo": t.lo, "reported_hi": t.hi, "model": model,
                "model_lo_95": lo, "model_hi_95": hi, "spread": spread, "z": z,
                "verdict": verdict if t.use != "withheld" else "prediction (withheld in the text)",
                "quote": t.quote,
            })
    return pd.DataFrame(rows)


TOPICS = ("Survival and follow-up", "Recurrence by site", "Repeat surgery",
          "Hazard ratios (univariate Cox, rectal primaries)", "The hepatectomy",
          "Withheld in the text: the model's predictions",
          "External figures: published series outside the study",
          "Kept aside: published figures the model was never fitted to")

KEPT_ASIDE_MONTHS = 36.0
"""Recurrences found after this many months are 'late' in the kept-aside check of tempo."""


def _topic(target) -> str:
    """The report's group of a figure of the study."""
    if target.use == "withheld":
        return TOPICS[5]
    if target.estimator == "cox_univariate":
        return TOPICS[3]
    if target.id.startswith(("periop", "los_")):
        return TOPICS[4]
    if "reop" in target.id or target.id.startswith("curative_sites"):
        return TOPICS[2]
    if target.estimator in ("one_minus_km_site", "crude_share", "share_among"):
        return TOPICS[1]
    return TOPICS[0]


def external_table(long: pd.DataFrame, arms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per external figure: published value and its 95% interval (from the published
    counts; on the log scale for a ratio), the model's value, z."""
    figures = external_figures(long, arms)
    rows = []
    for t in load_external_targets():
        model = figures[t.id]
        if t.scale == "log":
            lo, hi = (t.value * math.exp(sign * 1.96 * t.standard_error) for sign in (-1, 1))
        else:
            lo = max(0.0, t.value - 1.96 * t.standard_error)
            hi = min(1.0, t.value + 1.96 * t.standard_error)
        z = t.z(model)
        rows.append({"id": t.id, "label": t.label, "topic": TOPICS[6],
                     "section": t.population, "use": t.use, "group": "external",
                     "estimator": "external",
                     "reported": t.value, "reported_lo": lo, "reported_hi": hi, "model": model,
                     "model_lo_95": math.nan, "model_hi_95": math.nan, "spread": t.standard_error,
                     "z": z, "verdict": "ok" if abs(z) <= 1.96 else "miss",
                     "quote": t.quote})
    return pd.DataFrame(rows)


def _aside(id_, label, source, reported, model, quote, lo=math.nan, hi=math.nan) -> dict:
    return {"id": id_, "label": label, "topic": TOPICS[7], "section": source,
            "use": "kept aside", "group": "kept aside", "estimator": "kept aside",
            "reported": reported, "reported_lo": lo, "reported_hi": hi, "model": model,
            "model_lo_95": math.nan, "model_hi_95": math.nan, "spread": math.nan, "z": math.nan,
            "verdict": "beside the source (not fitted)", "quote": quote}


def kept_aside_table(long: pd.DataFrame, arms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Figures of the literature the model is checked against but never fitted to (their
    sources in calibration/README.md): curative treatment of late against early recurrences
    (the long cohort, baseline policy), and the detection advance of intensive follow-up in
    the FACS arms (same patients in every arm, 5 years)."""
    recurred = long["recurrence"].to_numpy(bool)
    found = long["recurrence_months"].to_numpy(float)
    cured = long["curative_reoperation_months"].notna().to_numpy()
    late = recurred & (found > KEPT_ASIDE_MONTHS)
    early = recurred & (found <= KEPT_ASIDE_MONTHS)
    minimum, intensive = arms["facs-minimum"], arms["facs-cea-ct"]
    both = (minimum["recurrence"].to_numpy(bool) & intensive["recurrence"].to_numpy(bool))
    paired = (minimum["recurrence_months"].to_numpy(float)
              - intensive["recurrence_months"].to_numpy(float))[both]
    means = [arm.loc[arm["recurrence"], "recurrence_months"].mean()
             for arm in (minimum, intensive)]
    os_months = long["os_months"].to_numpy(float)
    year = pd.to_datetime(long["hepatectomy_date"]).dt.year.to_numpy()
    alive = ~long["periop_death"].to_numpy(bool)
    later_era = (year >= 1992) & (year <= 2004) & alive
    survivors = os_months >= 120
    cancer_later = (long["death_cause"].to_numpy(object) == "cancer") & survivors
    rows = [
        _aside("os_120_1992_2004", "actual 10-year survival, hepatectomies 1992-2004",
               "Creasy et al. 2018, MSKCC 1992-2004, 1,211 patients (PMID 29455841)",
               295 / 1211, float(survivors[later_era].mean()),
               "295 (24.4%) actual 10-year survivors"),
        _aside("cured_through_recurrence", "10-year survivors who had a curative repeat "
               "operation", "Creasy et al. 2018 (58 of 250 cured); Viganò et al., Ann Surg Oncol "
               "2008 (5 of 17 disease-free 10-year survivors, Turin 1985-1996)", 58 / 250,
               float(cured[survivors].mean()),
               "23.2% of the cured reached it through a resected recurrence"),
        _aside("cancer_death_after_10", "cancer deaths after 10 years among 10-year survivors",
               "Tomlinson et al., J Clin Oncol 2007 (MSKCC 1985-1994)", 1 / 102,
               float(cancer_later[survivors].mean()),
               "one disease-specific death after 10 years among 102 survivors"),
        _aside("curative_share_late", "curative-intent treatment of first recurrences found "
               "after 3 years", "Galjart et al., Ann Surg Oncol 2016;23(12) (Erasmus MC "
               "2000-2011)", 0.55, float(cured[late].mean()),
               "patients disease-free at 3 years who recurred: more than half (55%) treated "
               "with curative intent"),
        _aside("curative_share_early", "curative-intent treatment of first recurrences found "
               "within 3 years", "model only: no series of the era reports it this way",
               math.nan, float(cured[early].mean()),
               "the same share among recurrences found by 36 months (to set beside the late)"),
        _aside("curative_share_all", "curative-intent treatment of first recurrences, any time",
               "Butte et al., Ann Surg Oncol 2015;22(8):2761-71 (MSKCC)", 160 / 594,
               float(cured[recurred].mean()),
               "re-resection of all disease in 160 of 594 patients who recurred (27%)"),
        _aside("advance_facs", "detection advance, FACS CEA+CT over minimum follow-up (months, "
               "paired mean)", "Mokhles et al., Br J Surg 2016;103:1259-68, Table 5 (FACS: 24 "
               "CEA+CT)", 24.0, float(paired.mean()),
               "advanced the diagnosis of recurrence by a median of 10 (i.q.r. 5-24) months "
               "over 16 randomized comparisons"),
        _aside("advance_trials", "difference in mean time to detected recurrence, FACS CEA+CT "
               "against minimum (months)", "Renehan et al., BMJ 2002;324:813 (5 trials, 1,342 "
               "patients); Tjandra and Chan, Dis Colon Rectum 2007;50:1783 (8 trials): 5.91",
               8.5, float(means[0] - means[1]),
               "intensive follow-up detected recurrences earlier: difference in means 8.5 "
               "months (7.6 to 9.4)", lo=7.6, hi=9.4),
    ]
    return pd.DataFrame(rows)


def _long_term_figure(long: pd.DataFrame, table: pd.DataFrame):
    """Survival and disease-free survival to 20 years of the long cohort, with the external
    points: Tomlinson's actual 10-year survival (1985-1994 hepatectomies)."""
    year = pd.to_datetime(long["hepatectomy_date"]).dt.year.to_numpy()
    era = ((year >= 1985) & (year <= 1994) & ~long["periop_death"].to_numpy(bool)).astype(int)
    grid = np.arange(0.0, 241.0, 3.0)
    curves = {}
    for label, duration, event in (("overall survival", "os_months", "death"),
                                   ("disease-free survival", "dfs_months", "dfs_event")):
        km = survival_at(kaplan_meier(long[duration].to_numpy(float), long[event].to_numpy(bool),
                                      groups={"era": era}), grid)
        curves[label] = km.pivot(index="era", columns="time", values="survival").to_numpy()
    point = table[table["id"] == "tomlinson_os_120_1985_1994"].iloc[0]

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for (label, values), colour in zip(curves.items(), ("tab:blue", "tab:orange")):
            axis.step(grid, values[1], where="post", color=colour,
                      label=f"model: {label}, hepatectomy 1985-1994")
            axis.step(grid, values[0], where="post", color=colour, ls=":", alpha=0.7,
                      label=f"model: {label}, other years")
        axis.errorbar([120], [point["reported"]], yerr=[[point["reported"] - point["reported_lo"]],
                      [point["reported_hi"] - point["reported"]]], fmt="s", color="black",
                      capsize=3, label="Tomlinson 2007: actual 10-year survival (95% CI)")
        axis.set(xlabel="months from hepatectomy", ylabel="survival", ylim=(0, 1.02),
                 xlim=(0, 240), title="Long-term survival, both primaries (20-year horizon)")
        axis.set_xticks(np.arange(0, 241, 24))
        axis.legend(fontsize=7, loc="upper right")
        return figure
    return draw


def _curve_band(frame: pd.DataFrame, duration: np.ndarray, event: np.ndarray, studies: int):
    """Whole-cohort Kaplan-Meier on the grid, and the 2.5-97.5% band across pseudo-studies."""
    n = len(frame)
    groups = np.concatenate([np.zeros(n, int), 1 + frame["patient_id"].to_numpy() % studies])
    table = survival_at(kaplan_meier(np.concatenate([duration, duration]),
                                     np.concatenate([event, event]), groups={"g": groups}), _GRID)
    values = table.pivot(index="g", columns="time", values="survival").to_numpy()
    return values[0], np.percentile(values[1:], 2.5, axis=0), np.percentile(values[1:], 97.5, axis=0)


def _survival_figure(patients, table, group, studies, title):
    frame = patients[patients["primary_site"] == group]
    curves = []
    for label, duration, event, prefix in (("overall survival", "os_months", "death", "os"),
                                           ("disease-free survival", "dfs_months", "dfs_event", "dfs")):
        curves.append((label, *_curve_band(frame, frame[duration].to_numpy(float),
                                           frame[event].to_numpy(bool), studies), prefix))

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for (label, whole, lo, hi, prefix), colour in zip(curves, ("tab:blue", "tab:orange")):
            axis.step(_GRID, whole, where="post", color=colour, label=f"model: {label}")
            axis.fill_between(_GRID, lo, hi, step="post", color=colour, alpha=0.2,
                              label="95% of studies of the paper's size")
            ids = [f"{'colon_' if group == 'colon' else ''}{prefix}_{m}" for m in (12, 36, 60)]
            points = table[table["id"].isin(ids)]
            axis.errorbar(points["id"].str.extract(r"_(\d+)$")[0].astype(float), points["reported"],
                          yerr=1.96 * points["spread"], fmt="o", color=colour, capsize=3,
                          label=f"study: {label} (+/- 1.96 spread)")
        axis.set(xlabel="months from hepatectomy", ylabel="survival", ylim=(0, 1.02), xlim=(0, 120),
                 title=title)
        axis.set_xticks(np.arange(0, 121, 12))
        axis.legend(fontsize=7, loc="upper right")
        return figure
    return draw


def _site_figure(patients, table, studies):
    frame = patients[patients["primary_site"] == "rectum"]
    lines = []
    for site in ("pelvis", "liver", "lung", "other"):
        at = frame[f"{site}_recurrence_months"].to_numpy(float)
        seen = ~np.isnan(at)
        duration = np.where(seen, at, frame["os_months"].to_numpy(float))
        whole, lo, hi = _curve_band(frame, duration, seen, studies)
        lines.append((site, 1 - whole, 1 - hi, 1 - lo))

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 4.2))
        colours = dict(pelvis="tab:red", liver="tab:brown", lung="tab:green", other="tab:gray")
        for site, whole, lo, hi in lines:
            axis.step(_GRID, whole, where="post", color=colours[site], label=f"model: {site}")
            axis.fill_between(_GRID, lo, hi, step="post", color=colours[site], alpha=0.15)
        for site, target in (("pelvis", "pelvic_60"), ("liver", "liver_60")):
            row = table[table["id"] == target].iloc[0]
            axis.errorbar([60], [row["reported"]], yerr=[1.96 * row["spread"]], fmt="o",
                          color=colours[site], capsize=3, label=f"study: {site} at 5 years")
        axis.set(xlabel="months from hepatectomy", ylabel="1 - Kaplan-Meier (first detection at site)",
                 ylim=(0, 1), xlim=(0, 120), title="Recurrence by site, rectal primaries")
        axis.set_xticks(np.arange(0, 121, 12))
        axis.legend(fontsize=7, loc="upper left")
        return figure
    return draw


def _forest_figure(table):
    hrs = table[table["estimator"] == "cox_univariate"].reset_index(drop=True)

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 0.45 * len(hrs) + 1))
        y = np.arange(len(hrs))[::-1]
        axis.errorbar(hrs["reported"], y + 0.15, xerr=[hrs["reported"] - hrs["reported_lo"],
                      hrs["reported_hi"] - hrs["reported"]], fmt="s", color="black", capsize=3,
                      label="study (95% CI)")
        axis.errorbar(hrs["model"], y - 0.15, xerr=[np.maximum(hrs["model"] - hrs["model_lo_95"], 0),
                      np.maximum(hrs["model_hi_95"] - hrs["model"], 0)], fmt="o", color="tab:blue",
                      capsize=3, label="model (95% of studies of the paper's size)")
        axis.set_xscale("log")
        ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10]
        axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
        axis.minorticks_off()
        axis.axvline(1, color="gray", lw=0.8)
        axis.set_yticks(y, hrs["label"])
        axis.set(xlabel="hazard ratio (univariate Cox)", title="Hazard ratios, rectal primaries")
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
        return figure
    return draw


_VERDICTS = {"ok": "within 1.96 spreads", "miss": "outside 1.96 spreads",
             "ok (bound)": "on the side the study's bound allows", "inside CI": "inside the study's CI",
             "outside CI": "outside the study's CI",
             "prediction (withheld in the text)": "a prediction (the text withholds the value)"}
_USES = {"fit": "fitted", "check": "checked, not fitted", "withheld": "predicted"}
_FIGURE_TITLES = {"survival_rectum.png": "Rectal primaries: overall and disease-free survival",
                  "sites_rectum.png": "Rectal primaries: recurrence by site",
                  "hazard_ratios.png": "Rectal primaries: hazard ratios, study and model",
                  "survival_colon.png": "Colon primaries: overall and disease-free survival",
                  "long_term.png": "Twenty years: the model beside the published long-term series",
                  "posterior_coverage.png": "The posterior's coverage: simulation-based calibration "
                                            "over synthetic studies"}

COVERAGE = Path(__file__).with_name("coverage.csv")
RANKS = Path(__file__).with_name("ranks.csv")


def _coverage_figure(coverage: pd.DataFrame, ranks: pd.DataFrame):
    """Left: the empirical coverage of each quantity's 50/80/95% intervals against the nominal,
    with two binomial standard errors. Right: for every parameter the ECDF of its true value's
    normalised rank among the posterior draws minus the uniform's, with the 95% band of a
    Kolmogorov-Smirnov test (Talts et al. 2018; Säilynoja, Bürkner and Vehtari 2022)."""
    draws = int(ranks["draws"].iloc[0])
    values = ranks.drop(columns="draws").to_numpy(float) / draws
    studies = len(values)
    grid = np.linspace(0, 1, 201)

    def draw(plt):
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        shift = {q: k * 0.008 for k, q in enumerate(coverage["quantity"].unique())}
        for quantity, rows in coverage.groupby("quantity", sort=False):
            rate = rows["covered"] / rows["studies"]
            se = np.sqrt(rows["nominal"] * (1 - rows["nominal"]) / rows["studies"])
            left.errorbar(rows["nominal"] + shift[quantity], rate, yerr=2 * se, fmt="o",
                          capsize=3, label=quantity)
        left.plot([0.4, 1], [0.4, 1], color="grey", lw=1)
        left.set(xlabel="nominal coverage", ylabel=f"empirical coverage ({studies} studies)",
                 xlim=(0.4, 1.0), ylim=(0.3, 1.02), title="Intervals of the quantities")
        left.legend(fontsize=7, loc="upper left")
        for column in values.T:
            right.plot(grid, (column[:, None] <= grid).mean(axis=0) - grid, lw=0.7, alpha=0.6)
        band = 1.358 / np.sqrt(studies)
        right.fill_between(grid, -band, band, color="grey", alpha=0.2, label="95% band (KS)")
        right.set(xlabel="normalised rank of the true value", ylabel="ECDF − uniform",
                  title=f"Ranks of the {values.shape[1]} parameters")
        right.legend(fontsize=7)
        figure.tight_layout()
        return figure
    return draw


def _present(x) -> bool:
    return x is not None and not (isinstance(x, float) and not np.isfinite(x))


def _number(x) -> str:
    if not _present(x):
        return "–"
    return number(x, ".3g")


def _rows(table: pd.DataFrame, topic: str) -> list[list[str]]:
    """The figures of one topic as cells: in words, the study's sentence and section, reported,
    model with its interval for a study of the paper's size, z and the verdict in words."""
    rows = []
    for r in table[table["topic"] == topic].itertuples():
        reported = _number(r.reported)
        if _present(r.reported_lo):
            reported += f" ({_number(r.reported_lo)} to {_number(r.reported_hi)})"
        model = _number(r.model)
        if _present(r.model_lo_95):
            model += f" ({_number(r.model_lo_95)} to {_number(r.model_hi_95)})"
        where = "" if r.group in ("external", "kept aside") else f"{r.group}; "
        rows.append([r.label, f"“{r.quote}” ({where}{r.section})", reported, model, _number(r.z),
                     f"{_USES.get(r.use, r.use)}; {_VERDICTS.get(r.verdict, r.verdict)}"])
    return rows


_HEADER = ["figure", "in the source's words (primary; section, or the series)", "reported (95% CI)",
           "model (95% of studies of the paper's size)", "z", "use; verdict"]


def _intro(meta: dict) -> list[str]:
    return [f"Parameters: {meta['params']} (set {meta['name']}). The model's value is estimated "
            f"the study's way (sim.analysis) on {meta['rectal']:,} rectal and {meta['colon']:,} "
            f"colon patients under the paper's design (seed {meta['seed']}); its interval is the "
            "2.5th to 97.5th percentile over pseudo-studies of the paper's size (141 rectal, 441 "
            "colon patients), the spread their standard deviation, and z = (model − reported) / "
            "spread (for a hazard ratio: on the log scale, with the spread from the study's CI).",
            f"Fitted figures within 1.96 spreads of the study: {meta['ok']} of {meta['fit']}; within "
            f"one spread: {meta['within1']} of {meta['fit']}; hazard ratios inside the study's CI: "
            f"{meta['hr_in']} of {meta['hr']}. External figures within 1.96 standard errors of the "
            f"published value: {meta['external_ok']} of {meta['external']} (on their own simulated "
            f"cohorts: {meta['external_cohorts']}; their interval is the published value's, from "
            "its counts)."]


def _markdown(table: pd.DataFrame, figures: list[str], meta: dict) -> str:
    lines = ["# The model against the study and the published long-term series", "",
             *[f"{line}\n" for line in _intro(meta)]]
    for topic in TOPICS:
        rows = _rows(table, topic)
        if not rows:
            continue
        lines += [f"## {topic}", "", "| " + " | ".join(_HEADER) + " |", "|---" * len(_HEADER) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Figures", ""] + [f"![{_FIGURE_TITLES.get(name, name)}]({name})\n" for name in figures]
    return "\n".join(lines) + "\n"


def _html(table: pd.DataFrame, pictures: dict[str, bytes], meta: dict) -> str:
    escape = html.escape

    def grid(rows):
        head = "".join(f"<th>{escape(cell)}</th>" for cell in _HEADER)
        body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                       for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    body = ["<h1>The model against the study and the published long-term series</h1>",
            *[f"<p>{escape(line)}</p>" for line in _intro(meta)]]
    for topic in TOPICS:
        rows = _rows(table, topic)
        if rows:
            body += [f"<h2>{escape(topic)}</h2>", grid(rows)]
    for name, png in pictures.items():
        title = _FIGURE_TITLES.get(name, name)
        body.append(f'<h2>{escape(title)}</h2><img alt="{escape(title)}" '
                    f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    style = ("body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}"
             "th{background:#f3f3f3} td:first-child{font-weight:600} img{max-width:100%}")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>crlm-sim validation</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_report(out: Path, params_path=None, policy_path=None, seed: int = 424242,
                 rectal_studies: int = 100, colon_studies: int = 30,
                 external_patients: int = 20_000) -> dict[str, Path]:
    params, _ = load_params(params_path)
    policy_path = policy_path or Path(str(resources.files("sim") / "scenarios" / "baseline.toml"))
    policy = load_policy(policy_path)
    design = StudyDesign(141 * rectal_studies, 441 * colon_studies, seed)
    patients = simulate_study(params, policy, design)
    external_design = ExternalDesign(external_patients, external_patients, seed + 1)
    long, arms = simulate_external(params, external_design)
    outside = external_table(long, arms)
    table = pd.concat([validation_table(patients, rectal_studies, colon_studies), outside,
                       kept_aside_table(long, arms)], ignore_index=True)
    fit = table[(table["use"] == "fit") & (table["group"] != "external")]
    outside_fit = outside[outside["use"] == "fit"]
    meta = {"params": str(params_path or "sim/data/params.toml (installed default)"),
            "name": params.meta.name, "rectal": design.rectal_patients,
            "colon": design.colon_patients, "seed": seed, "fit": len(fit),
            "ok": int((fit["z"].abs() <= 1.96).sum()), "within1": int((fit["z"].abs() <= 1).sum()),
            "hr": int((fit["estimator"] == "cox_univariate").sum()),
            "hr_in": int((fit["verdict"] == "inside CI").sum()),
            "external": len(outside_fit), "external_ok": int((outside_fit["z"].abs() <= 1.96).sum()),
            "external_cohorts": f"{external_design.long_patients:,} patients followed 20 years under "
                                f"the baseline policy; {external_design.arm_patients:,} in each FACS arm"}
    pictures = {
        "survival_rectum.png": png_bytes(_survival_figure(patients, table, "rectum", rectal_studies,
                                                            "Rectal primaries: survival after hepatectomy")),
        "sites_rectum.png": png_bytes(_site_figure(patients, table, rectal_studies)),
        "hazard_ratios.png": png_bytes(_forest_figure(table)),
        "survival_colon.png": png_bytes(_survival_figure(patients, table, "colon", colon_studies,
                                                           "Colon primaries: survival after hepatectomy")),
        "long_term.png": png_bytes(_long_term_figure(long, table)),
    }
    if COVERAGE.exists() and RANKS.exists():
        pictures["posterior_coverage.png"] = png_bytes(_coverage_figure(pd.read_csv(COVERAGE),
                                                                        pd.read_csv(RANKS)))
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, png in pictures.items():
        _atomic(out / name, png)
        paths[name] = out / name
    _atomic(out / "validation.csv", table.to_csv(index=False).encode())
    _atomic(out / "report.md", _markdown(table, list(pictures), meta).encode())
    _atomic(out / "report.html", _html(table, pictures, meta).encode())
    paths.update({"validation.csv": out / "validation.csv", "report.md": out / "report.md",
                  "report.html": out / "report.html"})
    return paths
