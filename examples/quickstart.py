"""crlm-sim from Python: a cohort, a comparison of follow-up policies, a power curve.

Run: python examples/quickstart.py   (about a minute on two cores; tests/test_docs.py runs it small)
"""

from __future__ import annotations

import sys
from pathlib import Path

import sim

ROOT = Path(__file__).resolve().parents[1]
SMALL = "--small" in sys.argv   # the test's size

# 1. A synthetic cohort in memory: the study's mix, followed 10 years under CT every 6 months.
cohort = sim.simulate_cohort(1000 if SMALL else 20_000, seed=1, design="horizon",
                             policy="trials/facs-ct")
patients = cohort.patients
print(f"{len(patients)} patients; recurred {patients.recurrence.mean():.1%}; "
      f"alive at 5 years {(patients.os_months >= 60).mean():.1%}")

# 2. Parameters are objects: a faster-growing disease, same patients otherwise.
params = sim.load_params()
faster = sim.with_values(params, {"growth.doubling_time_median_months": 2.5})
quick = sim.simulate_cohort(len(patients), seed=1, design="horizon", policy="trials/facs-ct",
                            params=faster).patients
print(f"with a 2.5-month doubling time, alive at 5 years {(quick.os_months >= 60).mean():.1%}")

# 3. The FACS arms compared on the same patients (a comparison file, or one built in Python).
comparison = sim.load_comparison(ROOT / "scenarios" / "comparisons" / "facs.toml")
if SMALL:
    import dataclasses

    comparison = dataclasses.replace(
        comparison, cohort=comparison.cohort.model_copy(update={"patients": 300}),
        uncertainty=comparison.uncertainty.model_copy(update={"draws": 2}))
result = sim.compare(comparison)
print(result.summary[["policy", "curative_share", "life_years_gained"]].to_string(index=False))

# 4. Power of the textbook exponential design, simulation beside Schoenfeld's formula.
curve = sim.power(ROOT / "scenarios" / "power" / "exponential.toml",
                  replicates=50 if SMALL else 1000)
print(curve.table[["n", "power", "schoenfeld_power"]].head().to_string(index=False))
