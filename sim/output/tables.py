"""From engine columns to the Arrow tables of `sim.output.schema` (vectorized, no row loops)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sim.engine.records import DETAILS, EVENTS, ChunkResult
from sim.model.policy import Policy
from sim.output.schema import SITE_ORDER, events_schema, patients_schema

__all__ = ["patients_table", "patient_columns", "arrow_patients", "events_table", "site_names",
           "WITHOUT_ROWS"]

# '+'-joined site names for each 4-bit mask (bit s = SITE_ORDER[s]); mask 0 is null.
_MASK_NAMES = np.array([None] + ["+".join(s for b, s in enumerate(SITE_ORDER) if m >> b & 1)
                                 for m in range(1, 16)], dtype=object)


def site_names(mask: np.ndarray) -> np.ndarray:
    return _MASK_NAMES[np.asarray(mask, np.int64)]


def _first(ev: dict[str, np.ndarray], where: np.ndarray, values: np.ndarray, n: int,
           fill) -> np.ndarray:
    """Per patient, `values` at the first event row where `where` holds (rows sorted in time)."""
    result = np.full(n, fill, dtype=np.asarray(values).dtype if fill is not None else object)
    rows = np.flatnonzero(where)
    patient = ev["row"][rows]
    first = np.r_[True, patient[1:] != patient[:-1]] if len(rows) else np.zeros(0, bool)
    result[patient[first]] = values[rows[first]]
    return result


def patients_table(cohort: dict[str, np.ndarray], result: ChunkResult,
                   converted: dict[str, pa.Array] | None = None) -> pa.Table:
    """One row per patient: covariates, then outcomes derived from the patient's events
    (`patient_columns`, as `arrow_patients` converts them). `converted`: the covariates as
    Arrow arrays, filled on first use (the same patients under several policies are converted
    once)."""
    return arrow_patients(patient_columns(cohort, result), converted, cohort)


def arrow_patients(columns: dict[str, np.ndarray], converted: dict[str, pa.Array] | None = None,
                   covariates=()) -> pa.Table:
    """`patient_columns` as a table of `patients_schema` (NaN written as null). `converted`:
    the Arrow arrays of the columns named in `covariates`, filled on first use."""
    schema = patients_schema()
    converted = {} if converted is None else converted
    arrays = {}
    for f in schema:
        if f.name in converted:
            arrays[f.name] = converted[f.name]
            continue
        # NaN (never observed) is written as null: Parquet's missing value, NaN again in pandas.
        arrays[f.name] = pa.array(columns[f.name], type=f.type, from_pandas=True)
        if f.name in covariates:
            converted[f.name] = arrays[f.name]
    return pa.table(arrays, schema=schema)


def patient_columns(cohort: dict[str, np.ndarray], result: ChunkResult,
                    names=None) -> dict[str, np.ndarray]:
    """The columns of `patients_table` as numpy arrays (NaN where the table has a null), for a
    caller that summarises them without a table; `names`: only these are needed (the others
    may be left out), None: every column."""
    ev = result.events
    if ev is None:
        return _columns_without_rows(cohort, result, names)
    n = len(cohort["patient_id"])
    code = {name: EVENTS.index(name) for name in EVENTS}
    detail = {name: DETAILS.index(name) for name in DETAILS}
    event, time, mask = ev["event"], ev["time_months"], ev["sites_mask"]
    terminal = (event == code["death"]) | (event == code["censored"])
    detection = event == code["detection"]
    recurrence_months = _first(ev, detection, time, n, np.nan)
    recurrence = ~np.isnan(recurrence_months)
    onset = _first(ev, event == code["onset"], time, n, np.nan)
    curative = (event == code["reoperation"]) & (ev["detail"] == detail["curative"])
    columns = {
        **cohort,
        "os_months": _first(ev, terminal, time, n, np.nan),
        "death": _first(ev, terminal, event == code["death"], n, False),
        "recurrence": recurrence,
        "recurrence_months": recurrence_months,
        "recurrence_onset_months": np.where(recurrence, onset, np.nan),
        "curative_reoperation_months": _first(ev, curative, time, n, np.nan),
        "n_scans": result.patients["n_scans"],
        "n_imaging": result.patients["n_imaging"],
        "n_workups": result.patients["n_workups"],
        "surveillance_cost": result.patients["surveillance_cost"],
        "first_symptom_months": result.patients["first_symptom_months"],
    }
    if names is not None and set(names) <= columns.keys():
        return columns
    death = columns["death"]
    cause_code = _first(ev, event == code["death"], ev["detail"], n, 0)
    cause = np.array(DETAILS, dtype=object)[cause_code]
    cause[np.isin(cause_code, [detail["perioperative"], detail["operative"]])] = "operative"
    cause[~death] = None
    found = detection | (event == code["progression"])
    site_months = {site: _first(ev, found & (mask >> s & 1 == 1), time, n, np.nan)
                   for s, site in enumerate(SITE_ORDER)}
    return columns | {
        "periop_death": cause_code == detail["perioperative"],
        "death_cause": cause,
        "dfs_months": np.fmin(recurrence_months, columns["os_months"]),
        "dfs_event": recurrence | death,
        "first_recurrence_sites": site_names(_first(ev, detection, mask, n, 0)),
        "n_recurrence_sites": sum((~np.isnan(v)).astype(np.int64) for v in site_months.values()),
        **{f"{site}_recurrence_months": site_months[site] for site in SITE_ORDER},
        "curative_reoperation_sites": site_names(_first(ev, curative, mask, n, 0)),
        "any_reoperation_months": _first(ev, event == code["reoperation"], time, n, np.nan),
    }


WITHOUT_ROWS = ("os_months", "death", "recurrence", "recurrence_months",
                "recurrence_onset_months", "curative_reoperation_months", "n_scans", "n_imaging",
                "n_workups", "surveillance_cost", "first_symptom_months")
"""The outcome columns `patient_columns` gives of a run that recorded no event rows (the direct
scheduler's `rows=False`): from each patient's end and first onset, detection and curative
reoperation, the same values as from the rows."""


def _columns_without_rows(cohort: dict[str, np.ndarray], result: ChunkResult,
                          names) -> dict[str, np.ndarray]:
    if names is None or not set(names) <= {*cohort, *WITHOUT_ROWS}:
        raise ValueError("patient_columns: a run without event rows gives only "
                         + ", ".join(WITHOUT_ROWS))
    p = result.patients
    recurrence_months = p["first_detection_months"]
    recurrence = ~np.isnan(recurrence_months)
    return {
        **cohort,
        "os_months": p["end_months"],
        "death": p["end_event"] == EVENTS.index("death"),
        "recurrence": recurrence,
        "recurrence_months": recurrence_months,
        "recurrence_onset_months": np.where(recurrence, p["first_onset_months"], np.nan),
        "curative_reoperation_months": p["first_curative_months"],
        **{name: p[name] for name in ("n_scans", "n_imaging", "n_workups", "surveillance_cost",
                                      "first_symptom_months")},
    }


def events_table(cohort: dict[str, np.ndarray], result: ChunkResult, policy: Policy) -> pa.Table:
    ev = result.events
    row = ev["row"]
    patient_id = cohort["patient_id"][row]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.array([], int)
    seq = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
    labels = np.array(list(policy.modalities) + ["symptoms", "restaging"], dtype=object)
    modality = np.where(ev["modality"] >= 0, ev["modality"], len(policy.modalities))
    modality = np.where(ev["event"] == EVENTS.index("progression"), len(labels) - 1, modality)
    modality = labels[modality].astype(object)
    detected = np.isin(ev["event"], [EVENTS.index("detection"), EVENTS.index("progression")])
    modality[~detected] = None
    detail = np.array(DETAILS, dtype=object)[ev["detail"]]
    detail[detail == ""] = None
    event = pa.DictionaryArray.from_arrays(pa.array(ev["event"], pa.int8()), pa.array(EVENTS))
    columns = {
        "patient_id": patient_id, "seq": seq, "time_months": ev["time_months"], "event": event,
        "site": site_names(ev["sites_mask"]), "modality": modality, "detail": detail,
    }
    schema = events_schema()
    arrays = [columns[f.name] if f.name == "event" else pa.array(columns[f.name], type=f.type)
              for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
