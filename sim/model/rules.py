"""The model's decisions, written once: what happens to a patient, whichever scheduler runs it.

Each rule is a function over arrays of patients, elementwise (numpy's broadcasting): the direct
scheduler (`sim.engine.direct`) calls it on every patient of an episode at once, the SimPy
scheduler (`sim.engine.simpy_scheduler`) on one patient's scalars, and the bulk pre-draw of
episodes (`sim.engine.draws`) on a whole chunk. A scheduler decides *when* something is looked
at and records it; a rule decides *what* happens. Times are months from the hepatectomy unless a
name says otherwise; a rule takes the uniforms it needs from the episode's TREATMENT stream
(`sim.engine.draws.EpisodeDraws`), so its answer is the same under every scheduler and policy.

What a visit finds is the other half of the model's decisions and lives beside the tests it
models (`sim.model.detection`); how the disease grows is `sim.model.natural_history`.
"""

from __future__ import annotations

import numpy as np

from sim.model.params import Treatment
from sim.model.streams import MAX_EPISODES

__all__ = ["SITE_BITS", "RESECTABLE_SITES", "OPERATIVE_WINDOW_MONTHS", "follow_up_stop",
           "perioperative_death", "episode_end", "onset_recorded", "detected_in_time",
           "surgery_time", "sites_operable", "operable", "curative_chance", "curative_surgery",
           "operative_death",
           "operative_death_time", "other_procedure", "restaging_time"]

SITE_BITS = (1, 2, 4, 8)
"""Bit of each site (pelvis, liver, lung, other) in a mask of involved sites."""
RESECTABLE_SITES = 1 | 2 | 4
"""Pelvis, liver and lung: 'other' sites were never operated with intent to cure in the study."""
OPERATIVE_WINDOW_MONTHS = 3.0
"""A death after a repeat operation counts as operative within 90 days (3 months)."""
_N_SITES = np.array([bin(mask).count("1") for mask in range(16)])


def follow_up_stop(censor_months, background_death_months):
    """(when follow-up ends if the disease does not end it first, whether that end is the
    censoring (True) or a death from other causes (False)). A tie goes to the censoring."""
    censored = censor_months <= background_death_months
    return np.minimum(censor_months, background_death_months), censored


def perioperative_death(periop_death_months, stop):
    """The hepatectomy's own operative death ends the patient (before follow-up stops)."""
    return periop_death_months < stop


def episode_end(stop, cancer_death_months):
    """(when an episode left untreated ends the patient's follow-up, whether that is the stop of
    follow-up (True) or the episode's cancer death (False)). A tie goes to the stop."""
    by_stop = stop <= cancer_death_months
    return np.minimum(stop, cancer_death_months), by_stop


def onset_recorded(onset_months, stop):
    """The onset of an episode is in the record when it comes before follow-up stops."""
    return onset_months < stop


def detected_in_time(detected_months, finish):
    """A recurrence is detected only before the end of the episode's follow-up."""
    return detected_months < finish


def surgery_time(detected_months, treatment: Treatment):
    """A repeat operation takes place the work-up's delay after the detection."""
    return detected_months + treatment.surgery_delay_months


def sites_operable(sites_mask, treatment: Treatment):
    """Whether curative-intent surgery can clear the sites of `sites_mask` (bits of
    `SITE_BITS`): only resectable sites (`RESECTABLE_SITES`), and no more of them than
    `treatment.curative_max_sites`."""
    sites_mask = np.asarray(sites_mask)
    return (((sites_mask & ~RESECTABLE_SITES) == 0)
            & (_N_SITES[sites_mask] <= treatment.curative_max_sites))


def operable(decided_months, surgery_months, finish, resectable_until_months):
    """The burden was still resectable when the operation was decided, and the patient is alive
    and in follow-up at the operation."""
    return (surgery_months < finish) & (decided_months <= resectable_until_months)


def curative_chance(tempo, treatment: Treatment):
    """The chance that disease resectable by burden and sites is limited enough (few lesions, a
    fit patient) to be operated with curative intent: log-odds
    ``logit(treatment.curative_prob_if_resectable)`` for disease of median tempo, rising by
    ``treatment.curative_log_odds_per_tempo_sd`` per standard deviation of the episode's tempo
    (`sim.model.natural_history`: slow, late disease is more often limited)."""
    p, slope = treatment.curative_prob_if_resectable, treatment.curative_log_odds_per_tempo_sd
    if slope == 0.0:
        return np.full(np.shape(tempo), p)
    with np.errstate(divide="ignore"):
        log_odds = np.log(p) - np.log1p(-p) + slope * np.asarray(tempo)
    return 1.0 / (1.0 + np.exp(-log_odds))


def curative_surgery(detected_months, finish, resectable_until_months, sites_mask,
                     u_curative, tempo, episode: int, treatment: Treatment):
    """Whether a detected recurrence (episode number `episode`) is operated with curative intent:
    operable at the time of detection (`operable`), on sites surgery can clear
    (`sites_operable`), chosen with `curative_chance` of the episode's `tempo` (the TREATMENT
    stream's first uniform), and not the last episode the streams provide for."""
    surgery = surgery_time(detected_months, treatment)
    return (operable(detected_months, surgery, finish, resectable_until_months)
            & (episode + 1 < MAX_EPISODES) & sites_operable(sites_mask, treatment)
            & (u_curative < curative_chance(tempo, treatment)))


def operative_death(u_operative_death, treatment: Treatment):
    """Whether a curative repeat operation kills the patient within `OPERATIVE_WINDOW_MONTHS`."""
    return u_operative_death < treatment.repeat_operative_death_prob


def operative_death_time(surgery_months, u_operative_time):
    """When an operative death happens: uniformly within `OPERATIVE_WINDOW_MONTHS`."""
    return surgery_months + OPERATIVE_WINDOW_MONTHS * u_operative_time


def other_procedure(surgery_months, finish, u_other, treatment: Treatment):
    """Whether a recurrence not operated with curative intent gets another procedure (ablation,
    palliative surgery) rather than systemic therapy alone."""
    return (surgery_months < finish) & (u_other < treatment.other_procedure_prob)


def restaging_time(detected_months, joined_months, finish, treatment: Treatment):
    """(when a site that joins an incurable recurrence after its detection is found, whether it
    is found in follow-up): at the first restaging after it joins, restagings every
    `treatment.restaging_interval_months` from the detection."""
    interval = treatment.restaging_interval_months
    with np.errstate(invalid="ignore"):
        when = detected_months + interval * np.ceil((joined_months - detected_months) / interval)
    found = (detected_months < joined_months) & (joined_months < finish) & (when < finish)
    return when, found
