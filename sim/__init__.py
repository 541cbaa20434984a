"""crlm-sim: patients after liver resection for colorectal liver metastases, simulated.

The package is light to import; each concept lives in its module:
parameters `sim.model.params`, surveillance policies `sim.model.policy`, random streams `sim.model.streams`, cohort
`sim.model.cohort`, natural history `sim.model.natural_history`, detection `sim.model.detection`, the SimPy engine
`sim.engine.patients` (with capacity, `sim.engine.capacity`), output schema and tables `sim.output.schema`,
`sim.output.tables`, runs and execution `sim.execution.runner`, `sim.execution.executor`, policy comparisons `sim.studies.comparison`,
`sim.reports.comparison`, power `sim.studies.power`, survival analysis `sim.analysis`, the command line
`sim.cli`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
