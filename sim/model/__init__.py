"""The model: parameters, surveillance policies, random streams, the cohort, the natural history of
recurrence, detection, background mortality and the study designs. No SimPy, no files."""
