"""crlm-sim: patients after liver resection for colorectal liver metastases, simulated.

The package is light to import; each concept lives in its module:
parameters `sim.params`, surveillance policies `sim.policy`, random streams `sim.streams`, cohort
`sim.cohort`, natural history `sim.natural_history`, detection `sim.detection`, the SimPy engine
`sim.engine` (with capacity, `sim.capacity`), output schema and tables `sim.schema`,
`sim.tables`, runs and execution `sim.runner`, `sim.executor`, policy comparisons `sim.compare`,
`sim.compare_report`, power `sim.power`, survival analysis `sim.analysis`, the command line
`sim.cli`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
