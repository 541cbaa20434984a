"""The cost-effectiveness section's further parts: structural scenarios, Monte Carlo error, the
deterministic analyses (tornado, two-way, thresholds), the value of information by parameter
and of a proposed trial, the inputs with their sources, the CHEERS 2022 items and the published
evaluations the model's answer can be set against.

The numbers are the comparison's tables (`sim.studies.decision.DecisionTables`,
`sim.studies.sensitivity.SensitivityTables`, `sim.studies.evsi`); this module only renders them.
"""

from __future__ import annotations

import numpy as np

from sim.reports.document import Block, Bullets, Figure, Heading, Paragraph, Table
from sim.reports.figures import png_bytes
from sim.reports.text import number
from sim.studies.decision import EVPI, noisy

__all__ = ["more", "wtp_curves", "PUBLISHED_EVALUATIONS", "CHEERS_ITEMS"]

PUBLISHED_EVALUATIONS = (
    ("Renehan AG, O'Dwyer ST, Whynes DK, BMJ 2004;328:81",
     "UK NHS; model on a meta-analysis of 5 early RCTs; 5-year horizon",
     "intensive follow-up +0.73 life-years and +£2,479 per patient: £3,402 per life-year",
     "disagrees: its survival gain came from early trials; the model, like the later trials, "
     "finds almost none"),
    ("Mokhles S et al., Br J Surg 2016 (meta-analysis of randomised monitoring trials)",
     "16 randomised comparisons; 7 with overall survival (3,325 patients)",
     "lead time median 10 months (IQR 5-24); overall survival HR 0.98 (0.87-1.11)",
     "agrees: the model's detection advance is about 11 months and its survival gain small"),
    ("Mant D et al., Health Technol Assess 2017;21(32) (FACS)",
     "England; 1,202 patients; minimum, CEA, CT, CEA + CT",
     "more curative treatment of recurrence with CEA or CT; no survival difference (cost tables "
     "not read here)", "agrees on survival (the model reproduces FACS's curative ratios)"),
    ("Verberne CJ et al. (CEA Watch), Netherlands 2010-2012",
     "3,223 patients; intensified CEA against usual follow-up",
     "yearly cost €548 against €497; about €9,400 per additional recurrence detected",
     "not comparable in units (per recurrence detected, not per QALY)"),
    ("Augestad KM et al., BMC Health Serv Res 2014;14:137",
     "Norway; national surveillance programme",
     "31% of surveillance events false positive; £103,207 per successful R0 resection",
     "the model's false positives and work-ups are priced; the cost per resection is not "
     "reported"),
    ("Gazelle GS, Hunink MGM, Kuntz KM et al., Ann Surg 2003",
     "US; Monte Carlo model of hepatic metastasectomy and CT follow-up",
     "resection with CT follow-up every 6 months judged cost-effective (figures not read here)",
     "disagrees in direction; its inputs assumed a survival benefit of earlier resection"),
)
"""Published cost-effectiveness studies of follow-up after colorectal or liver-metastasis
resection: (study, setting, what it found, where this model stands)."""

CHEERS_ITEMS = (
    ("3-4 Abstract, introduction", "the comparison's name and description; README"),
    ("5 Health economic analysis plan", "the comparison and economics files (scenarios/)"),
    ("6 Study population", "cohort: the study's case mix (calibration/README.md); Notes"),
    ("7 Setting and location", "the economics file's description and perspective"),
    ("8 Comparators", "Policies"),
    ("9 Perspective", "this section's first paragraph"),
    ("10 Time horizon", "this section's first paragraph; the 10-year horizon as a scenario"),
    ("11 Discount rate", "this section's first paragraph"),
    ("12 Selection of outcomes", "QALYs and life-years; Glossary"),
    ("13 Measurement of outcomes", "the calibrated natural history (calibration/README.md)"),
    ("14 Valuation of outcomes", "Inputs: utilities as multipliers of the population norm"),
    ("15 Measurement and valuation of resources and costs", "Inputs (sources, price years)"),
    ("16 Currency, price date and conversion", "Inputs: price year and conversion of each cost"),
    ("17 Rationale and description of model", "docs/architecture.md, calibration/README.md"),
    ("18 Analytics and assumptions", "Structural scenarios; Inputs marked assumption"),
    ("19 Characterising heterogeneity", "not reported (one cohort; subgroups by simulation)"),
    ("20 Characterising distributional effects", "not reported"),
    ("21 Characterising uncertainty", "probabilistic analysis, one-way, two-way, threshold, "
                                      "structural scenarios, Monte Carlo error, EVPI, EVPPI, EVSI"),
    ("22 Approach to engagement with patients", "none"),
    ("23 Study parameters", "Inputs; the posterior sample (calibration/README.md)"),
    ("24 Summary of main results", "the tables above"),
    ("25 Effect of uncertainty", "acceptability, tornado, thresholds, value of information"),
    ("26 Effect of engagement", "none"),
    ("27 Study findings, limitations, generalisability", "Published evaluations; "
                                                         "docs/economic-inputs.md"),
    ("28 Source of funding; 29 Conflicts of interest", "none (an open-source model)"),
)
"""The CHEERS 2022 items (Husereau D et al., BMJ 2022;376:e067975) and where the report, or the
project's documents, answer them."""


def _money(value: float) -> str:
    return number(value, ",.0f")


def _value(value: float) -> str:
    """A value as a reader reads it: thousands with separators, small ones to 4 figures."""
    if not np.isfinite(value):
        return "–"
    return number(value, ",.0f") if abs(value) >= 1000 else number(value, ".4g")


def _tornado(one_way, name, threshold, unit, top=15):
    rows = one_way[(one_way["policy"] == name) & (one_way["wtp"] == threshold)].head(top)

    def draw(plt):
        figure, axis = plt.subplots(figsize=(8.5, 0.36 * len(rows) + 1.6))
        base = rows["net_benefit_difference_base"].iloc[0]
        for k, row in enumerate(rows.itertuples()):
            y = len(rows) - 1 - k
            for end, colour in (("low", "C0"), ("high", "C3")):
                value = getattr(row, f"net_benefit_difference_{end}")
                axis.barh(y, value - base, left=base, color=colour, alpha=0.75,
                          label=f"input at its {end} end" if k == 0 else None)
        axis.axvline(base, color="black", linewidth=1)
        axis.axvline(0, color="grey", linestyle=":", linewidth=1)
        labels = [f"{r.input} ({r.evidence})" for r in rows.itertuples()]
        axis.set_yticks(range(len(rows)))
        axis.set_yticklabels(labels[::-1], fontsize=8)
        axis.set(xlabel=f"Incremental net benefit of {name} at {threshold:,.0f} per QALY ({unit})",
                 title="One-way sensitivity (tornado): each input over its interval")
        axis.legend(fontsize=8, loc="lower right")
        axis.grid(alpha=0.3, axis="x")
        return figure
    return draw


def _two_way(two_way, name, unit):
    rows = two_way[two_way["policy"] == name]
    xs, ys = np.sort(rows["x"].unique()), np.sort(rows["y"].unique())
    grid = rows.pivot(index="y", columns="x", values="net_benefit_difference").loc[ys, xs]

    def draw(plt):
        figure, axis = plt.subplots(figsize=(7, 5))
        image = axis.pcolormesh(xs, ys, grid.to_numpy(), shading="nearest", cmap="RdBu")
        bound = np.abs(grid.to_numpy()).max()
        image.set_clim(-bound, bound)
        if grid.to_numpy().min() < 0 < grid.to_numpy().max():
            axis.contour(xs, ys, grid.to_numpy(), levels=[0.0], colors="black")
        figure.colorbar(image, label=f"Incremental net benefit of {name} ({unit})")
        axis.set(xlabel=rows["input_x"].iloc[0], ylabel=rows["input_y"].iloc[0],
                 title=f"Two-way sensitivity at {rows['wtp'].iloc[0]:,.0f} per QALY "
                       "(black line: the decision changes)")
        return figure
    return draw


def wtp_curves(ceac, names, economics, column: str, ylabel: str, title: str,
               frontier: bool = False, symlog: bool = False):
    """One curve per policy of `column` of the acceptability table against willingness to pay,
    the thresholds marked; `frontier`: dots on the acceptability frontier."""
    def draw(plt):
        figure, axis = plt.subplots(figsize=(7.5, 4.6))
        for k, name in enumerate(names):
            rows = ceac[ceac["policy"] == name]
            axis.plot(rows["wtp"], rows[column], color=f"C{k}", label=name)
            if frontier:
                front = rows[rows["on_acceptability_frontier"]]
                axis.scatter(front["wtp"], front[column], s=14, color=f"C{k}",
                             edgecolor="black", linewidth=0.5, zorder=3)
        for threshold in economics.thresholds:
            axis.axvline(threshold, color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel=f"Willingness to pay per QALY ({economics.cost_unit})", ylabel=ylabel,
                 title=title)
        if symlog:
            axis.set_yscale("symlog", linthresh=10)
        else:
            axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        return figure
    return draw


def _enbs(evsi, economics):
    def draw(plt):
        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
        for k, threshold in enumerate(np.sort(evsi["wtp"].unique())):
            rows = evsi[evsi["wtp"] == threshold].sort_values("per_arm")
            left.errorbar(rows["per_arm"], rows["evsi"], yerr=2 * rows["se"], marker="o",
                          capsize=3, color=f"C{k}", label=f"{threshold:,.0f} per QALY")
            right.errorbar(rows["per_arm"], rows["enbs"], yerr=2 * rows["enbs_se"], marker="o",
                           capsize=3, color=f"C{k}", label=f"{threshold:,.0f} per QALY")
        right.axhline(0, color="black", linewidth=0.8)
        left.set(xlabel="Patients per arm", ylabel=f"EVSI per patient ({economics.currency})",
                 title="Expected value of sample information (± 2 SE)")
        right.set(xlabel="Patients per arm",
                  ylabel=f"Expected net benefit of sampling ({economics.currency})",
                  title="ENBS: population EVSI minus the trial's cost (± 2 SE)")
        sizes = np.sort(evsi["per_arm"].unique())
        for axis in (left, right):
            axis.set_xscale("log")
            axis.set_xticks(sizes, [f"{n:,}" for n in sizes])
            axis.minorticks_off()
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        return figure
    return draw


def _icer(row) -> str:
    if row["policy_is_reference"]:
        return "reference"
    if row["qalys_difference"] <= 0 and row["cost_difference"] >= 0:
        return "dominated"
    if not np.isfinite(row["icer"]):
        return "–"
    return _money(row["icer"])


def more(result, economics, reference, comparison, names) -> list[Block]:
    """The further parts of the cost-effectiveness section (see the module's docstring)."""
    unit, thresholds = economics.cost_unit, economics.thresholds
    out: list[Block] = []
    structures = result.structures
    if structures is not None:
        table = structures.assign(policy_is_reference=structures["policy"] == reference)
        rows = [[r["label"], r["policy"], _money(r["cost_difference"]),
                 f"{r['life_years_difference']:.3f}", f"{r['qalys_difference']:.3f}", _icer(r),
                 *[_money(r[f"net_benefit_difference_at_{t:.0f}"]) for t in thresholds],
                 f"{r[f'probability_best_at_{thresholds[0]:.0f}']:.0%}"]
                for _, r in table.iterrows() if r["policy"] != reference]
        out += [Heading("Structural scenarios", 3),
                Paragraph("The same patients and draws priced under each model structure: how "
                          "systemic therapy is costed (by line, as the trials report it, or every "
                          "month to death), how the months of lead time are valued and costed "
                          "(at the recurrence's utility with supportive care, or as "
                          "disease-free until the recurrence would have caused symptoms), and the "
                          "horizon (lifetime, or the former 10 years). Means over the draws."),
                Table(("structure", "policy", f"additional cost ({unit})", "life-years gained",
                       "QALYs gained", f"ICER ({unit} per QALY)",
                       *[f"net benefit at {t:,.0f}" for t in thresholds],
                       f"probability best at {thresholds[0]:,.0f}"), tuple(map(tuple, rows)))]
    error = result.monte_carlo
    if error is not None and len(error):
        rows = [[r.policy, r.measure, _value(r.mean), _value(r.mcse_of_mean),
                 f"{r.noise_share:.1%}" if np.isfinite(r.noise_share) else "–",
                 _value(np.sqrt(r.parameter_variance))]
                for r in error.itertuples()]
        nmb = error[error["measure"] == f"net_benefit_at_{thresholds[0]:.0f}"]
        share = nmb["noise_share"].max() if len(nmb) else np.nan
        out += [Heading("Monte Carlo error", 3),
                Paragraph(f"Each draw simulates {error['patients_per_draw'].iloc[0]:,.0f} patients "
                          f"per policy. The patient-level noise of a draw's incremental result is "
                          f"the paired per-patient variance over the patients; its mean over the "
                          f"draws, as a share of the variance over the draws, is "
                          f"{share:.1%} for the net benefit at {thresholds[0]:,.0f} per QALY. "
                          "The standard error of each mean over the draws (Monte Carlo standard "
                          "error) and the spread over the draws with the patient noise taken "
                          "out (the parameter uncertainty) are below."),
                Table(("policy", "measure (against the reference)", "mean", "MCSE of the mean",
                       "patient noise, share of the PSA variance", "parameter sd"),
                      tuple(map(tuple, rows)))]
        warnings = noisy(error)
        if warnings:
            out.append(Bullets(tuple(f"WARNING: {text}: the spread over the draws, and the "
                                     "value of information, still carry the patients' noise."
                                     for text in warnings)))
    if comparison is not None and comparison.sensitivity is not None:
        out += _deterministic(comparison.sensitivity, reference, names, unit, thresholds)
    out += _information(result, comparison, economics, names, reference, unit)
    if comparison is not None and comparison.inputs is not None:
        rows = [[r.input, _value(r.value),
                 r.distribution if r.distribution == "fixed"
                 else f"{r.distribution} (SE {_value(r.se)})",
                 f"{_value(r.low)} to {_value(r.high)}", r.evidence,
                 "" if r.price_year is None or np.isnan(r.price_year) else f"{r.price_year:.0f}",
                 r.source] for r in comparison.inputs.itertuples()]
        assumed = (comparison.inputs["evidence"] == "assumption").sum()
        out += [Heading("Inputs", 3),
                Paragraph(f"Every input of {economics.name}: its value ({unit} for costs), the "
                          "distribution of the probabilistic analysis (method of moments from the "
                          "value and its standard error), the one-way interval, the evidence, "
                          f"the price year of its source and the source. {assumed} inputs are "
                          "assumptions; each is varied over its interval in the one-way analysis "
                          "and drawn in the probabilistic one. Conversions to the file's price "
                          "year are in inputs.csv and docs/economic-inputs.md."),
                Table(("input", "value", "distribution", "one-way interval", "evidence",
                       "price year", "source"), tuple(map(tuple, rows)))]
    out += [Heading("Published evaluations", 3),
            Table(("study", "setting", "found", "this model"), PUBLISHED_EVALUATIONS),
            Heading("CHEERS 2022", 3),
            Paragraph("Where this report (or the project's documents) answers each item of the "
                      "Consolidated Health Economic Evaluation Reporting Standards 2022 (Husereau "
                      "D et al., BMJ 2022;376:e067975)."),
            Table(("item", "where"), CHEERS_ITEMS)]
    return out


def _deterministic(s, reference, names, unit, thresholds) -> list[Block]:
    first = thresholds[0]
    rows = [[r["policy"], _money(r["cost_total"]), f"{r['life_years']:.3f}", f"{r['qalys']:.3f}",
             *[f"{_money(r[f'net_benefit_difference_at_{t:.0f}'])} "
               f"(MCSE {_money(r[f'net_benefit_difference_at_{t:.0f}_mcse'])})"
               for t in thresholds]] for _, r in s.base.iterrows()]
    out: list[Block] = [
        Heading("Deterministic sensitivity", 3),
        Paragraph(f"A base-case cohort of {s.patients:,} patients per policy at the fitted point "
                  "estimate of the natural history and the inputs' values, priced again with one "
                  "input (or two) changed: the same patients every time."),
        Table(("policy", f"cost ({unit})", "life-years", "QALYs",
               *[f"incremental net benefit at {t:,.0f}" for t in thresholds]),
              tuple(map(tuple, rows)))]
    for name in names:
        if name == reference or not len(s.one_way):
            continue
        out.append(Figure(f"tornado-{name}.png", f"Tornado: {name} against {reference}",
                          png_bytes(_tornado(s.one_way, name, first, unit)), heading=4))
        if len(s.two_way):
            out.append(Figure(f"two-way-{name}.png", f"Two-way: {name} against {reference}",
                              png_bytes(_two_way(s.two_way, name, unit)), heading=4))
    if len(s.thresholds):
        rows = []
        for r in s.thresholds.itertuples():
            found = (f"none from {_value(r.domain_low)} to {_value(r.domain_high)}"
                     if np.isnan(r.threshold_value) else _value(r.threshold_value))
            rows.append([r.input, r.policy, f"{r.wtp:,.0f}", _value(r.base), found])
        out += [Paragraph("Threshold analysis: the value of an input at which the policy's net "
                          "benefit equals the reference's (the decision changes), searched over "
                          "the input's domain, the others at their values."),
                Table(("input", "policy", "per QALY", "value", "threshold value"),
                      tuple(map(tuple, rows)))]
    return out


def _information(result, comparison, economics, names, reference, unit) -> list[Block]:
    value = result.evppi
    perfect = value[value["group"] == EVPI]
    at = perfect[perfect["wtp"].isin(economics.thresholds)]["evppi"]
    verdict = []
    if len(at) and np.all(at.fillna(0).to_numpy() == 0):
        verdict = [Paragraph("No draw of the probabilistic analysis prefers another policy than "
                             "the one of highest expected net benefit at the thresholds: the "
                             "expected value of perfect information is 0 there, and so is every "
                             "partial and sample value below it. Further research cannot change "
                             "this decision at these thresholds, whatever it costs.")]
    out: list[Block] = [Heading("Value of information", 3), *verdict,
                        Figure("expected-loss.png", "Expected loss curves",
                               png_bytes(wtp_curves(
                                   result.ceac, names, economics, "expected_loss",
                                   f"Expected loss per patient ({economics.currency})",
                                   "Expected loss curves (the lowest is the EVPI)",
                                   symlog=True)), heading=4)]
    groups = value[value["wtp"].isin(value.loc[value["group"] != EVPI, "wtp"])]  # value points
    if (groups["group"] != EVPI).any():
        rows = [[r.group, f"{r.wtp:,.0f}", number(r.evppi, ",.2f"), number(r.se, ",.2f"),
                 "–" if not np.isfinite(r.r2) else f"{r.r2:.2f}", r.method or "exact"]
                for r in groups.itertuples()]
        out += [Paragraph("EVPPI per patient by group of parameters, with its standard error "
                          "and the regression's cross-validated R² (the worst over the "
                          "policies' costs and QALYs' net benefit at that willingness to pay); "
                          "the parameters of each group are in evppi.csv."),
                Table(("group", "per QALY", f"EVPPI per patient ({economics.currency})", "SE",
                       "R²", "method"), tuple(map(tuple, rows)))]
    ranking = result.evppi_ranking
    if ranking is not None and len(ranking):
        # at the first threshold, or where the EVPI is largest if every EVPPI is 0 there
        valued = perfect[(perfect["evppi"] > 0) & perfect["wtp"].isin(ranking["wtp"])]
        wtp = economics.thresholds[0]
        if (ranking[ranking["wtp"] == wtp]["evppi"] <= 0).all() and len(valued):
            wtp = valued.loc[valued["evppi"].idxmax(), "wtp"]
        top = ranking[ranking["wtp"] == wtp].head(12)
        rows = [[f"{r.rank:.0f}", r.parameter, r.group, number(r.evppi, ",.2f"),
                 number(r.se, ",.2f"),
                 "–" if not np.isfinite(r.share_of_evpi) else f"{r.share_of_evpi:.0%}"]
                for r in top.itertuples()]
        out += [Paragraph(f"EVPPI of each parameter alone at {wtp:,.0f} per QALY, ranked (as "
                          "BCEA's info.rank), with its standard error; every parameter's value "
                          "at the thresholds and from 50,000 to 200,000 per QALY is in "
                          "evppi_ranking.csv."),
                Table(("rank", "parameter", "group", f"EVPPI per patient ({economics.currency})",
                       "SE", "share of the parameters' EVPI"), tuple(map(tuple, rows)))]
    if comparison is not None and comparison.evsi is not None:
        evsi, checks = comparison.evsi, comparison.evsi_checks
        rows = [[f"{r.per_arm:,}", f"{r.wtp:,.0f}", number(r.evsi, ",.2f"), number(r.se, ",.2f"),
                 _money(r.evsi_population), _money(r.trial_cost),
                 f"{_money(r.enbs)} ± {_money(2 * r.enbs_se)}", f"{r.probability_optimal:.0%}",
                 "yes" if r.maximises_enbs else ("within noise" if r.within_noise_of_best
                                                 else "")] for r in evsi.itertuples()]
        passed = [f"At {c.wtp:,.0f} per QALY: EVSI at most {number(c.evsi_max, ',.2f')} "
                  f"(SE {number(c.evsi_max_se, ',.2f')}) ≤ EVPPI of "
                  f"natural history and test accuracy {number(c.evppi_informed, ',.2f')} "
                  f"(SE {number(c.evppi_informed_se, ',.2f')}) ≤ EVPI of the parameters "
                  f"{number(c.evpi, ',.2f')} (SE {number(c.evpi_se, ',.2f')}) per patient: "
                  + ("holds" if c.evsi_within_evppi and c.evppi_within_evpi
                     else "DOES NOT HOLD within 2 standard errors")
                  + "; EVSI non-negative and not falling with n within 2 standard errors: "
                  + ("yes" if c.evsi_non_negative and c.evsi_grows_with_n else "NO")
                  for c in checks.itertuples()]
        first = evsi.iloc[0]
        out += [Paragraph(f"A proposed randomized trial of {first['experimental']} against "
                          f"{first['control']}, every patient followed "
                          f"{first['follow_up_years']:g} years: "
                          "each draw's trial simulated on its natural history, summarised by "
                          "the difference in restricted mean survival and in curative repeat "
                          "operations; EVSI by regression of each policy's costs and QALYs on "
                          "those two statistics (Strong et al., Med Decis Making 2015), at the "
                          "thresholds and from 50,000 to 200,000 per QALY, with its standard "
                          "error. ENBS = EVSI for the decision's population "
                          f"({result.population:,.0f} discounted patients) minus the trial's cost "
                          "(the economics file's trial_cost), ± 2 standard errors; the "
                          "probability that a size is optimal is over the ENBS's estimation "
                          "error, and a size is named the optimum only where its ENBS is "
                          "positive by more than 2 standard errors."),
                Table(("patients per arm", "per QALY", f"EVSI per patient ({economics.currency})",
                       "SE", "EVSI, population", f"trial cost ({unit})", "ENBS ± 2 SE",
                       "probability optimal", "optimum"),
                      tuple(map(tuple, rows))),
                Bullets(tuple(passed)),
                Figure("evsi.png", "EVSI and ENBS by trial size",
                       png_bytes(_enbs(evsi, economics)), heading=4)]
    return out
