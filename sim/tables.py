"""From engine columns to the Arrow tables of `sim.schema` (vectorized, no row loops)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sim.engine import DETAILS, EVENTS, ChunkResult
from sim.policy import Policy
from sim.schema import SITE_ORDER, events_schema, patients_schema

__all__ = ["patients_table", "events_table", "site_names"]

# '+'-joined site names for each 4-bit mask (bit s = SITE_ORDER[s]); mask 0 is null.
_MASK_NAMES = np.array([None] + ["+".join(s for b, s in enumerate(SITE_ORDER) if m >> b & 1)
                                 for m in range(1, 16)], dtype=object)


def site_names(mask: np.ndarray) -> np.ndarray:
    return _MASK_NAMES[np.asarray(mask, np.int64)]


def patients_table(cohort: dict[str, np.ndarray], result: ChunkResult) -> pa.Table:
    out = result.patients
    recurrence = ~np.isnan(out["recurrence_months"])
    dfs = np.fmin(out["recurrence_months"], out["os_months"])
    site_months = out["site_months"]
    cause = np.array(DETAILS, dtype=object)[out["death_cause"]]
    cause[~out["death"]] = None
    columns = {
        **{name: cohort[name] for name in cohort},
        "periop_death": out["periop_death"],
        "os_months": out["os_months"],
        "death": out["death"],
        "death_cause": cause,
        "recurrence": recurrence,
        "recurrence_months": out["recurrence_months"],
        "recurrence_onset_months": out["recurrence_onset_months"],
        "dfs_months": dfs,
        "dfs_event": recurrence | out["death"],
        "first_recurrence_sites": site_names(out["first_recurrence_mask"]),
        "n_recurrence_sites": (~np.isnan(site_months)).sum(axis=1).astype(np.int64),
        **{f"{site}_recurrence_months": site_months[:, s] for s, site in enumerate(SITE_ORDER)},
        "curative_reoperation_months": out["curative_reoperation_months"],
        "curative_reoperation_sites": site_names(out["curative_reoperation_mask"]),
        "any_reoperation_months": out["any_reoperation_months"],
        "n_scans": out["n_scans"],
        "n_episodes": out["n_episodes"],
    }
    schema = patients_schema()
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema}, schema=schema)


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
