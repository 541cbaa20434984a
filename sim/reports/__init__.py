"""What people look at: the comparison report, the power report, the cohort summary and the shared
PNG helper. Reports read tables; they run no simulation."""
