"""Sizes a run may ask for, checked before anything is started or written.

Each limit sits well above any study this simulator is meant for and well below what would
exhaust this kind of machine's memory or run for days; a request beyond one is refused in one
line that names the field and the limit, instead of dying of MemoryError an hour later with its
staging directory left behind.
"""

from __future__ import annotations

__all__ = ["MAX_PATIENTS", "MAX_CHUNK", "MAX_COMPARISON_PATIENTS", "MAX_PATIENT_LIVES",
           "MAX_TRIAL_PATIENTS", "MAX_POWER_REPLICATES", "MAX_POWER_PATIENT_LIVES",
           "MAX_ALLOCATION", "MAX_VISITS"]

MAX_PATIENTS = 100_000_000
"""A written cohort (`cohort --n`): 10^8 patients are 10^4 units of 10^4 and about 9 GB of Parquet
(300,000 take 26 MB); beyond it the list of units alone grows without bound."""

MAX_CHUNK = 1_000_000
"""Patients per unit (`--chunk-size`, `patients_per_department`): a unit's patients and events are
held in memory while it is simulated."""

MAX_COMPARISON_PATIENTS = 10_000_000
"""Patients per policy and draw in a comparison (`cohort.patients`)."""

MAX_PATIENT_LIVES = 10_000_000_000
"""Patients x policies x draws x replicates of one comparison: 10^10 is about a day on two cores
at 10^5 patient-lives a second."""

MAX_TRIAL_PATIENTS = 1_000_000
"""The largest sample size of a power design (`sample_sizes`)."""

MAX_POWER_REPLICATES = 1_000_000
"""Replicate trials per sample size (`replicates`, `--replicates`)."""

MAX_POWER_PATIENT_LIVES = 10_000_000_000
"""Replicates x the sum of the sample sizes of one power run."""

MAX_ALLOCATION = 100
"""Each side of a randomization ratio (`allocation = [e, c]`): 100:1 is already no trial."""

MAX_VISITS = 480
"""Scheduled visits of one policy per disease-free interval: a visit every two weeks for its 20
years (`interval_months` below half a month is not a follow-up schedule)."""
