"""crlm-sim: patients after liver resection for colorectal liver metastases, simulated.

The three jobs, as functions that return pandas DataFrames (or small results holding them):

- `sim.simulate_cohort(n, seed=..., design=..., primary=..., policy=..., params=...)`: a synthetic
  cohort in memory (`sim.write_cohort` writes one to disk, unit by unit);
- `sim.compare(file_or_comparison)`: surveillance policies on the same patients over parameter
  draws;
- `sim.power(file_or_design)`: power and sample size by simulation, with the formulas beside it.

Inputs load as objects: `sim.load_params`, `sim.load_policy`, `sim.load_comparison`,
`sim.load_design`; `sim.with_values` changes parameters. The value of information of any
probabilistic analysis's sample, shaped like the R package voi: `sim.evpi(net_benefit)`,
`sim.evppi(net_benefit, inputs, pars)`, `sim.evsi(net_benefit, inputs, study_data)`, each an
`Estimate` (a float with `.se`). The package stays light to import (the
names load on first use). Its folders follow the pipeline: `sim.model` (parameters, policies,
streams, cohort, natural history, detection), `sim.engine` (SimPy), `sim.output` (schema, tables),
`sim.execution` (runs, executors), `sim.studies` (comparisons, power), `sim.reports`, and
`sim.analysis` (survival analysis); the command line is `sim.cli`.
"""

__version__ = "0.1.0"

__all__ = ["simulate_cohort", "write_cohort", "compare", "power", "load_params", "load_policy",
           "load_comparison", "load_design", "with_values", "CohortResult", "ComparisonResult",
           "Params", "Policy", "Comparison", "Design", "PowerCurve", "InputError",
           "evpi", "evppi", "evsi", "Estimate"]

_VALUE_OF_INFORMATION = ("evpi", "evppi", "evsi", "Estimate")


def __getattr__(name: str):
    """Load the API on first use, so that `import sim` (and `crlm-sim --help`) stays light."""
    if name in _VALUE_OF_INFORMATION:
        from sim.studies import voi  # noqa: PLC0415

        return getattr(voi, name)
    if name in __all__:
        from sim import api  # noqa: PLC0415

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
