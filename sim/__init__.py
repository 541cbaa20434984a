"""crlm-sim: patients after liver resection for colorectal liver metastases, simulated.

The package is light to import; the engine, analysis and I/O live in their modules:
`sim.params`, `sim.policy`, `sim.cohort`, `sim.natural_history`, `sim.detection`, `sim.engine`,
`sim.runner`, `sim.analysis`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
