"""Replay: one patient's draws, taken from the streams by hand, give the engine's times."""

from __future__ import annotations

import csv
import math
from statistics import NormalDist

import numpy as np
import pytest

from conftest import packaged, simulate
from sim.model.lifetable import background_death_months


def _stream(seed, purpose, patient_id, width, stream=()):
    spawn_key = (0, purpose, *stream)
    key = np.random.SeedSequence(seed, spawn_key=spawn_key).generate_state(2, np.uint64)
    bit_generator = np.random.Philox(key=key)
    bit_generator.advance(patient_id * width // 4)
    return np.random.Generator(bit_generator).random(width)


def _theta_by_hand(row, params):
    r = params.recurrence
    hr = 1.0
    flags = {"era_pre1994": row.era_pre1994, "tumor_gt_5cm": row.tumor_gt_5cm,
             "margin_positive": row.margin_positive, "rfa": row.hepatic_treatment != "resection",
             "n2": row.n_stage == "N2", "cea_gt_200": row.cea_gt_200}
    for name, on in flags.items():
        hr *= getattr(r.hazard_ratio_all_sites, name) if on else 1.0
    pelvis = r.theta_pelvis if row.primary_site == "rectum" else 0.0
    p = r.hazard_ratio_pelvis
    pelvis *= (p.cea_gt_200 if row.cea_gt_200 else 1) * (p.apr if row.primary_operation == "APR" else 1)
    pelvis *= (p.era_pre1994 if row.era_pre1994 else 1) * (p.chemoradiation if row.chemoradiation else 1)
    q = r.hazard_ratio_liver
    liver = r.theta_liver * (q.less_than_hemihepatectomy if row.less_than_hemihepatectomy else 1)
    liver *= (q.margin_positive if row.margin_positive else 1) * (q.rfa if flags["rfa"] else 1)
    return [pelvis * hr, liver * hr, r.theta_lung * hr, r.theta_other * hr]


def _promotion_time(u, theta, shape, scale):
    exposure = -math.log(1 - u)
    if theta > 0 and exposure < theta:
        return scale * (-math.log(1 - exposure / theta)) ** (1 / shape)
    return math.inf


def _log2_burden_by_hand(t, involved, doubling, params):
    volume = sum(2 ** ((t - when) / doubling) for when in involved if when <= t)
    if not volume:
        return -math.inf
    return 3 * math.log2(params.growth.onset_diameter_mm / 10) + math.log2(volume)


def _time_to_burden_by_hand(level, involved, doubling, params):
    """Bisection on the burden, piece by piece: an independent route to the engine's closed form."""
    joins = sorted(t for t in involved if math.isfinite(t)) + [math.inf]
    for start, stop in zip(joins, joins[1:]):
        if _log2_burden_by_hand(start, involved, doubling, params) >= level:
            return start
        high = min(stop, start + 100 * doubling)
        if _log2_burden_by_hand(high - 1e-12, involved, doubling, params) < level and math.isfinite(stop):
            continue
        low = start
        for _ in range(200):
            middle = (low + high) / 2
            if _log2_burden_by_hand(middle, involved, doubling, params) < level:
                low = middle
            else:
                high = middle
        return high
    return math.inf


def _episode_by_hand(u, theta, params):
    """Onset, site involvement times, doubling time and symptom time of the first episode,
    scalar maths."""
    r, g = params.recurrence, params.growth
    z = NormalDist().inv_cdf(u[15])                      # the episode's tempo
    stretch = math.exp(g.onset_doubling_exponent * g.doubling_time_sigma_log * z)
    early = [_promotion_time(u[s], theta[s], r.onset_weibull_shape, r.onset_weibull_scale_months)
             * stretch for s in range(4)]
    late = [_promotion_time(u[16 + s], theta[s] * r.late_share, r.late_weibull_shape,
                            r.late_weibull_scale_months) for s in range(4)]
    latent = [min(e, l) for e, l in zip(early, late)]
    onset = min(latent)
    opener = latent.index(onset)
    if math.isfinite(onset) and late[opener] < early[opener]:
        z += r.late_tempo_shift                          # dormant disease wakes slow
    doubling = g.doubling_time_median_months * math.exp(g.doubling_time_sigma_log * z)
    per_doubling = doubling / g.doubling_time_median_months
    co = (r.co_involvement_pelvis, r.co_involvement_liver, r.co_involvement_lung,
          r.co_involvement_other)
    involved = []
    for s in range(4):
        if theta[s] == 0:
            involved.append(math.inf)
        elif latent[s] == onset or u[4 + s] < co[s]:
            involved.append(onset)
        else:
            involved.append(min(latent[s], onset - math.log(1 - u[8 + s]) * per_doubling
                                / r.spread_rate_per_month))
    level = g.symptom_log2_burden_mean + g.symptom_log2_burden_sd * NormalDist().inv_cdf(u[12])
    symptom = (_time_to_burden_by_hand(level, involved, doubling, params) if math.isfinite(onset)
               else math.inf)
    producer = u[20] < params.detection.marker_producing_share
    return onset, involved, doubling, symptom, producer


def test_first_onset_and_detection_replayed_by_hand(params, policy):
    seed = 31
    patients, events = simulate(params, policy, n=300, seed=seed, design="horizon", years=30)
    p = patients.to_pandas()
    e = events.to_pandas()
    e["event"] = e["event"].astype(str)
    k = params.detection.size_exponent
    detections = 0
    for row in p.itertuples():
        u = _stream(seed, 1, row.patient_id, 24, stream=(0,))  # episode 0's stream
        onset, involved, doubling, symptom, producer = _episode_by_hand(
            u, _theta_by_hand(row, params), params)
        mine = e[e.patient_id == row.patient_id]
        onsets = mine[mine.event == "onset"]
        if onsets.empty:   # cured, dead within 90 days of the hepatectomy, or censored before
            assert math.isinf(onset) or onset >= row.os_months or row.periop_death
            continue
        assert onsets.time_months.iloc[0] == pytest.approx(onset, rel=1e-12)
        if math.isfinite(row.first_symptom_months):
            assert row.first_symptom_months == pytest.approx(symptom, rel=1e-9)
        # Detection: the first attended visit at which the summed -log(1 - p) passes Exp(1); a
        # site of diameter d is missed with (1 - s) ** ((d / 10) ** k), CEA with (1 - s) ** B.
        exponential = -math.log(1 - _stream(seed, 2, row.patient_id, 4, stream=(0,))[0])
        # attendance: the first uniform of the patient's block in the stream of (episode 0, month)
        attended = [_stream(seed, 3, row.patient_id, 4, stream=(0, int(month)))[0] < policy.adherence
                    for month in policy.visit_months]
        found, total = symptom, 0.0
        for j, visit in enumerate(policy.visit_months):
            if not (onset <= visit < symptom and attended[j]):
                continue
            burden = 2 ** _log2_burden_by_hand(visit, involved, doubling, params)
            miss = (1 - policy.patient_sensitivity[j]) ** burden if producer else 1.0
            for s in range(4):
                if involved[s] <= visit:
                    diameter = params.growth.onset_diameter_mm * 2 ** ((visit - involved[s]) / (3 * doubling))
                    miss *= (1 - policy.site_sensitivity[j, s]) ** ((diameter / 10) ** k)
            total += -math.log(miss)
            if total >= exponential:
                found = visit
                break
        detected = mine[mine.event == "detection"]
        if detected.empty:
            assert found >= row.os_months
            continue
        assert detected.time_months.iloc[0] == pytest.approx(found, rel=1e-12)
        detections += 1
    assert detections >= 50


def test_background_death_by_a_plain_loop():
    table = {}
    with packaged("data/us_period_life_table_qx.csv").open() as handle:
        for rec in csv.DictReader(handle):
            table[(int(rec["year"]), rec["sex"], int(rec["age"]))] = float(rec["qx"])
    rng = np.random.default_rng(4)
    age = rng.uniform(30, 85, 40)
    male = rng.random(40) < 0.5
    year = rng.integers(1984, 2006, 40)
    exponential = rng.exponential(size=40)
    fast = background_death_months(age, male, year, exponential)
    for i in range(40):
        left, k = exponential[i], 0
        while True:
            q = table[(min(year[i] + k, 2017), "male" if male[i] else "female", min(int(age[i]) + k, 119))]
            rate = -math.log(1 - q) if q < 1 else math.inf
            if left <= rate:
                expected = 12 * (k + (left / rate if math.isfinite(rate) else 0.0))
                break
            left -= rate
            k += 1
        assert fast[i] == pytest.approx(expected, rel=1e-9)
