"""Coerce and check the arguments of the analysis functions, and turn group labels into codes.

Every public function of :mod:`sim.analysis` starts here: arrays arrive as numpy arrays, pandas
Series or Arrow columns and leave as one-dimensional numpy arrays, or as a ``ValueError`` that
names the argument, what it must be and the first value that is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "Grouping",
    "to_numpy",
    "as_durations",
    "as_entry",
    "as_event_observed",
    "as_event_type",
    "as_covariate",
    "as_grouping",
    "factorize",
]

_CAUSES = "(0 = censored, 1..K = cause)"


def to_numpy(values, name: str) -> np.ndarray:
    """One-dimensional numpy view or copy of an array, a pandas Series or an Arrow column."""
    if type(values).__module__.startswith("pyarrow"):
        values = values.to_numpy(zero_copy_only=False)
    elif isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        nullable = isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and values.dtype.kind in "biuf"
        if nullable and bool(pd.isna(values).any()):
            values = values.to_numpy(dtype=float, na_value=np.nan)  # <NA> becomes NaN, reported as such
        else:
            values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"The '{name}' argument must be one-dimensional; got shape {array.shape}.")
    return array


def _check_length(array: np.ndarray, name: str, n: int | None) -> None:
    if n is not None and array.shape[0] != n:
        raise ValueError(
            f"The '{name}' argument must have the same length as 'durations' ({n}); got {array.shape[0]}."
        )


def _reject(bad: np.ndarray, array: np.ndarray, message: str) -> None:
    """Raise ``message`` followed by the first value where ``bad`` holds, if any."""
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{message}; got {_show(array[i])} at position {i}.")


def _show(value) -> str:
    """A value as the user wrote it: ``-1.0``, not ``np.float64(-1.0)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _as_float(values, name: str, n: int | None) -> np.ndarray:
    array = to_numpy(values, name)
    _check_length(array, name, n)
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"The '{name}' argument must be numeric; got dtype {array.dtype}.") from None
    return array.astype(np.float64, copy=False)


def as_durations(values, name: str = "durations", n: int | None = None) -> np.ndarray:
    """Float64 times: non-negative, not NaN, finite."""
    array = _as_float(values, name, n)
    if array.shape[0] == 0:
        raise ValueError(f"The '{name}' argument must not be empty.")
    _reject(~(array >= 0), array, f"The '{name}' argument must be non-negative and not NaN")  # NaN too
    _reject(np.isinf(array), array, f"The '{name}' argument must be finite")
    return array


def as_entry(values, durations: np.ndarray) -> np.ndarray:
    """Float64 entry (left-truncation) times, each no later than its duration."""
    entry = as_durations(values, "entry", durations.shape[0])
    bad = entry > durations
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"The 'entry' argument must not exceed 'durations'; got entry {_show(entry[i])} > "
                         f"duration {_show(durations[i])} at position {i}.")
    return entry


def as_event_observed(values, n: int, name: str = "event_observed") -> np.ndarray:
    """Boolean event indicator from booleans or the numbers 0 and 1."""
    array = to_numpy(values, name)
    _check_length(array, name, n)
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind not in "iuf":
        raise ValueError(f"The '{name}' argument must be boolean or 0/1; got dtype {array.dtype}.")
    _reject((array != 0) & (array != 1), array, f"The '{name}' argument must be boolean or 0/1")  # NaN too
    return array == 1


def as_event_type(values, n: int, name: str = "event_type") -> np.ndarray:
    """Int64 event type: 0 for censored, 1..K for the cause of the event."""
    array = to_numpy(values, name)
    _check_length(array, name, n)
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"The '{name}' argument must hold integers {_CAUSES}; got dtype {array.dtype}.")
    bad = ~(array >= 0) | (array != np.round(array)) if array.dtype.kind == "f" else array < 0
    _reject(bad, array, f"The '{name}' argument must hold non-negative integers {_CAUSES}")
    return array.astype(np.int64)


def as_covariate(values, n: int, name: str = "x") -> np.ndarray:
    """Float64 covariate, finite."""
    array = _as_float(values, name, n)
    _reject(~np.isfinite(array), array, f"The '{name}' argument must be finite and not NaN")
    return array


def factorize(values, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 (intp) and the k distinct labels in sorted order; integers need no sort."""
    array = to_numpy(values, name)
    _check_length(array, name, n)
    if array.dtype.kind in "biu":
        as_int = array.astype(np.int64, copy=False)
        low, high = int(as_int.min()), int(as_int.max())
        if high - low <= 4 * n + 1024:  # dense integer labels: one bincount
            shifted = as_int - low if low else as_int
            present = np.bincount(shifted, minlength=high - low + 1) > 0
            labels = (np.flatnonzero(present) + low).astype(array.dtype)
            if low == 0 and present.all():  # the labels are already 0..k-1
                return shifted.astype(np.intp, copy=False), labels
            return (np.cumsum(present) - 1)[shifted].astype(np.intp, copy=False), labels
    elif array.dtype.kind in "fO":
        _reject(np.asarray(pd.isna(array)), array, f"The '{name}' argument must not contain missing values")
    labels, codes = np.unique(array, return_inverse=True)
    return codes.reshape(-1).astype(np.intp), labels


@dataclass(frozen=True)
class Grouping:
    """Rows mapped to groups 0..n_groups-1, numbered in the sorted order of the labels.

    ``labels`` maps each output column name to the label of every group (length ``n_groups``).
    """

    codes: np.ndarray
    n_groups: int
    labels: dict[str, np.ndarray]

    def sizes(self) -> np.ndarray:
        """Number of rows of each group."""
        if self.n_groups == 1:
            return np.array([self.codes.shape[0]])
        return np.bincount(self.codes, minlength=self.n_groups)


def _named_arrays(groups) -> dict[str, object]:
    if isinstance(groups, pd.DataFrame):
        return {str(column): groups[column] for column in groups.columns}
    if isinstance(groups, Mapping):
        return {str(name): values for name, values in groups.items()}
    if isinstance(groups, (list, tuple)) and len(groups) > 0 and np.ndim(groups[0]) >= 1:
        return {f"group_{i}": values for i, values in enumerate(groups)}
    return {"group": groups}


def as_grouping(groups, n: int, name: str = "groups") -> Grouping:
    """Group codes from None, one array (column ``group``), a list or tuple of arrays (``group_0``,
    ``group_1``, ...), or a dict or DataFrame of named arrays (columns named by the keys)."""
    if groups is None:
        return Grouping(np.zeros(n, dtype=np.intp), 1, {})
    arrays = _named_arrays(groups)
    factors = {column: factorize(values, name if column == "group" else f"{name}[{column!r}]", n)
               for column, values in arrays.items()}
    codes_list = [codes for codes, _ in factors.values()]
    sizes = [len(labels) for _, labels in factors.values()]
    if len(codes_list) == 1:
        column, (codes, labels) = next(iter(factors.items()))
        return Grouping(codes, len(labels), {column: labels})
    if float(np.prod(sizes, dtype=float)) < 2.0**62:  # every combination fits one int64 code
        codes, present = factorize(np.ravel_multi_index(codes_list, sizes), name, n)
        per_array = np.unravel_index(present, sizes)
    else:
        present_rows, codes = np.unique(np.stack(codes_list, axis=1), axis=0, return_inverse=True)
        codes, per_array = codes.reshape(-1).astype(np.intp), present_rows.T
    labels = {column: factors[column][1][index] for column, index in zip(factors, per_array, strict=True)}
    return Grouping(codes, len(per_array[0]), labels)
