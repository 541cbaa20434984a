"""Running many patients: units of work on local processes or a Dask cluster
(`sim.execution.executor`), written as partitioned Parquet, resumable (`sim.execution.runner`)."""
