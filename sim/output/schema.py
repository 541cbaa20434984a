"""The output schema, written down in one place: columns, types, units and meanings.

`patients.parquet` has one row per patient, `events.parquet` one row per event; both sorted by
`patient_id` (then `seq`). All times are months from the hepatic metastectomy; an event after
censoring is not observed (NaN / false / null). The meanings below are stored in the Parquet
schema metadata of each column.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["PATIENT_COLUMNS", "EVENT_COLUMNS", "patients_schema", "events_schema", "SITE_ORDER"]

SITE_ORDER = ("pelvis", "liver", "lung", "other")
_S, _F, _B, _I = pa.string(), pa.float64(), pa.bool_(), pa.int64()

PATIENT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("patient_id", _I, "patient number, unique within a run; keys the patient's random streams"),
    ("primary_site", _S, "'rectum' or 'colon'"),
    ("age_years", _F, "age at hepatectomy, years"),
    ("sex", _S, "'female' or 'male'"),
    ("hepatectomy_date", pa.date32(), "calendar date of the hepatic metastectomy (time origin)"),
    ("era_pre1994", _B, "hepatectomy before 1994-01-01"),
    ("t_stage", _S, "pathological T stage of the primary, 'T1'..'T4'"),
    ("n_stage", _S, "pathological N stage of the primary, 'N0', 'N1' or 'N2'"),
    ("cea_gt_200", _B, "preoperative CEA above 200 ng/mL"),
    ("presentation", _S, "'synchronous' or 'metachronous' liver metastases"),
    ("simultaneous_resection", _B, "synchronous disease resected in one operation"),
    ("primary_operation", _S, "'LAR', 'APR', 'other' (rectum) or 'colectomy' (colon)"),
    ("chemoradiation", _B, "chemoradiation of the rectal primary"),
    ("complete_pathological_response", _B, "no residual carcinoma after chemoradiation"),
    ("preop_chemotherapy", _B, "systemic chemotherapy before the hepatectomy"),
    ("hepatic_treatment", _S, "'resection', 'resection_rfa' or 'rfa'"),
    ("major_hepatectomy", _B, "resection of 3 or more segments"),
    ("less_than_hemihepatectomy", _B, "resection smaller than a hemihepatectomy"),
    ("anatomic_resection", _B, "anatomic (not wedge) resection"),
    ("margin_positive", _B, "microscopically positive margin (R1)"),
    ("tumor_gt_5cm", _B, "largest metastasis larger than 5 cm"),
    ("periop_complication", _B, "perioperative complication"),
    ("length_of_stay_days", _I, "length of stay after the hepatectomy, days"),
    ("periop_death", _B, "death within 90 days of the hepatectomy (observed)"),
    ("os_months", _F, "months to death or censoring"),
    ("death", _B, "death observed (any cause)"),
    ("death_cause", _S, "'operative', 'cancer' or 'background'; null if alive at censoring"),
    ("recurrence", _B, "a recurrence was detected during follow-up"),
    ("recurrence_months", _F, "months to the first detected recurrence"),
    ("recurrence_onset_months", _F, "months to the onset (its first lesion reaches 5 mm) of "
                                    "the first detected recurrence"),
    ("dfs_months", _F, "months to the first detected recurrence, death or censoring"),
    ("dfs_event", _B, "recurrence or death observed"),
    ("first_recurrence_sites", _S, "sites of the first detected recurrence, joined with '+' in "
                                   "the order pelvis, liver, lung, other"),
    ("n_recurrence_sites", _I, "distinct sites detected during follow-up"),
    ("pelvis_recurrence_months", _F, "months to the first detection involving the pelvis"),
    ("liver_recurrence_months", _F, "months to the first detection involving the liver"),
    ("lung_recurrence_months", _F, "months to the first detection involving the lung"),
    ("other_recurrence_months", _F, "months to the first detection involving another site"),
    ("curative_reoperation_months", _F, "months to the first curative-intent repeat operation"),
    ("curative_reoperation_sites", _S, "sites operated at the first curative-intent repeat "
                                       "operation, joined with '+'"),
    ("any_reoperation_months", _F, "months to the first repeat procedure of any intent"),
    ("n_scans", _I, "surveillance visits attended"),
    ("n_imaging", _I, "imaging examinations at the attended visits (CT, MRI, ...; not markers)"),
    ("n_workups", _I, "work-ups of false-positive surveillance results"),
    ("surveillance_cost", _F, "cost of the surveillance visits and work-ups (the policy's units)"),
    ("first_symptom_months", _F, "months to when the first detected recurrence would have caused "
                                 "symptoms (latent: its lead time is this minus recurrence_months)"),
)

EVENT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("patient_id", _I, "patient number"),
    ("seq", _I, "order of the event within the patient, from 0"),
    ("time_months", _F, "months from the hepatectomy"),
    ("event", pa.dictionary(pa.int8(), _S), "hepatectomy | onset (latent: the first lesion "
     "reaches 5 mm) | detection | progression (a new site found on treatment) | reoperation | "
     "systemic_therapy | death | censored; each patient ends with exactly one death or censored"),
    ("site", _S, "sites involved, joined with '+' (pelvis, liver, lung, other); null if none"),
    ("modality", _S, "what found the disease: the visit's modalities, 'symptoms' or 'restaging'"),
    ("detail", _S, "hepatectomy: hepatic treatment; reoperation: 'curative' or 'other'; death: "
     "cause ('perioperative' within 90 days of the hepatectomy, 'operative' after a repeat operation, 'cancer', 'background'); censored: 'study_close', 'horizon' or 'lost_to_follow_up'; onset: 'latent'"),
)


def _schema(columns, title: str) -> pa.Schema:
    fields = [pa.field(name, kind, metadata={"description": text}) for name, kind, text in columns]
    return pa.schema(fields, metadata={"title": title, "time_unit": "months from hepatectomy"})


def patients_schema() -> pa.Schema:
    return _schema(PATIENT_COLUMNS, "crlm-sim patients: one row per patient")


def events_schema() -> pa.Schema:
    return _schema(EVENT_COLUMNS, "crlm-sim events: one row per event")
