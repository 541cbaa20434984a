"""What a run writes: the output schema (`sim.output.schema`), the patient and event tables built
from the engine's columns (`sim.output.tables`) and the one-screen tally (`sim.output.tally`)."""
