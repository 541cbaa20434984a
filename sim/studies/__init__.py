"""Studies built on the simulator: comparisons of surveillance policies over parameter draws
(`sim.studies.comparison`) and power by simulation (`sim.studies.power`)."""
