"""The reference of every input file and of the output tables, generated from the models that
check them (pydantic) and from the output schema, so that it cannot drift from the code.

    python -m sim.reports.reference docs/       # rewrites docs/inputs.md and docs/outputs.md

`tests/test_docs.py` fails when the files in `docs/` differ from what this module writes.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.model.economics import _EconomicsFile
from sim.model.params import load_params
from sim.model.policy import _PolicyFile
from sim.output.schema import EVENT_COLUMNS, PATIENT_COLUMNS
from sim.studies.economics import ECONOMIC_COLUMNS
from sim.studies.comparison import _ComparisonFile
from sim.studies.power.designs import CohortDesign, ExponentialDesign, TrialDesign

__all__ = ["inputs_reference", "outputs_reference", "write_reference"]

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least", "max_length": "at most"}


def _type_name(kind) -> str:
    """A short, readable name of a field's type."""
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if origin is typing.Annotated:
        return _type_name(arguments[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in arguments if a is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in arguments else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in arguments)
    if origin in (list, tuple):
        inner = ", ".join(_type_name(a) for a in arguments if a is not Ellipsis)
        return f"{'list' if origin is list else 'pair'} of {inner}"
    if origin is dict:
        return f"table of {_type_name(arguments[-1])}"
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return f"table ({kind.__name__.strip('_')})"
    return getattr(kind, "__name__", str(kind))


def _bounds(kind, info: FieldInfo | None = None) -> str:
    metadata = list(info.metadata) if info is not None else []
    if typing.get_origin(kind) is typing.Annotated:
        metadata += list(typing.get_args(kind)[1:])
    for argument in typing.get_args(kind):   # Optional[Annotated[...]]
        if typing.get_origin(argument) is typing.Annotated:
            metadata += list(typing.get_args(argument)[1:])
    for item in list(metadata):   # Field(...) inside Annotated carries its own constraints
        if isinstance(item, FieldInfo):
            metadata += list(item.metadata)
    words = []
    for item in metadata:
        for name, sign in _BOUNDS.items():
            value = getattr(item, name, None)
            if value is not None:
                words.append(f"{sign} {value}")
    return ", ".join(words)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return f"`{info.default_factory()}`"
    return "absent" if info.default is None else f"`{info.default}`"


def _model_table(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Rows for every key of `model`, nested tables flattened with dotted names."""
    rows, nested = [], []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        kind = info.annotation
        rows.append(f"| `{prefix}{name}` | {_type_name(kind)} | {_bounds(kind, info)} | {_default(info)} |")
        for inner in _models_in(kind):
            nested.append((f"{prefix}{name}{'.NAME' if typing.get_origin(_strip(kind)) is dict else ''}"
                           f"{'[]' if typing.get_origin(_strip(kind)) is list else ''}.", inner))
    for child_prefix, inner in nested:
        rows += _model_table(inner, child_prefix)
    return rows


def _strip(kind):
    while typing.get_origin(kind) in (typing.Union, types.UnionType, typing.Annotated):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def _models_in(kind) -> list[type[BaseModel]]:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [kind]
    found = []
    for argument in typing.get_args(kind):
        found += _models_in(argument)
    return found


def _section(title: str, text: str, model: type[BaseModel]) -> list[str]:
    return [f"## {title}", "", text, "", "| key | type | allowed | default |", "|---|---|---|---|",
            *_model_table(model), ""]


def _params_rows(node, prefix: str = "") -> list[str]:
    rows = []
    hints = typing.get_type_hints(type(node), include_extras=True)
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if dataclasses.is_dataclass(value):
            rows += _params_rows(value, f"{prefix}{field.name}.")
        elif prefix != "meta.":
            kind = hints[field.name]
            rows.append(f"| `{prefix}{field.name}` | {_type_name(kind)} | {_bounds(kind)} |")
    return rows


def inputs_reference() -> str:
    """docs/inputs.md: every key of every input file, its type, what is allowed, its default."""
    params, _ = load_params()
    lines = [
        "# Input files", "",
        "Generated by `python -m sim.reports.reference docs/` from the models that check the files "
        "(`tests/test_docs.py` fails when it is stale). A number written `{ value = ..., source = "
        "\"...\" }` carries its source, which starts with `study:`, `cite:`, `assumption:`, "
        "`hand-set:` or `fitted:`. An unknown key is an error that names the nearest allowed key.",
        "",
        "## Parameter file (`sim/data/params.toml`)", "",
        "Every key is required and is a table `{ value = ..., source = \"...\" }`, except `[meta]` "
        "(`name`, `description`). The installed values and their sources are in the model card, "
        "`calibration/README.md`.", "",
        "| key | type | allowed |", "|---|---|---|", *_params_rows(params), "",
        *_section("Surveillance policy (`scenarios/*.toml`)",
                  "Phases of visits (each from `from_months` to `to_months` every `interval_months`, "
                  "with the modalities named), what each modality finds (`sensitivity` per site for "
                  "a 10-mm lesion, or `patient` for a marker such as CEA: the per-test chance for a "
                  "producing recurrence of one 10-mm lesion's volume), its specificity and cost, and "
                  "an optional capacity. Numbers are `{ value, source }` tables.", _PolicyFile),
        *_section("Comparison (`scenarios/comparisons/*.toml`)",
                  "Policies (paths relative to the file, or files of `scenarios/`; a path must "
                  "lead under the file's folder or the packaged scenarios) run on the same "
                  "patients over `uncertainty.draws` parameter sets of the posterior sample "
                  "(0: the fitted point). With `economics` (an economics file, relative to the "
                  "file like the policies; `crlm-sim run --economics FILE` replaces it) the "
                  "comparison is a cost-effectiveness analysis.", _ComparisonFile),
        *_section("Economics (`scenarios/economics/*.toml`)",
                  "Currency and price year; discount rates for costs and effects (a year: year t "
                  "weighs (1 + r)^-t, in continuous time); durations; the population for the value of information; one-off costs "
                  "of events, costs per examination by the policies' modality names, costs per "
                  "month in a state; utilities of states and one-off disutilities. Numbers are "
                  "`{ value, sd, source }` tables: `sd` is the spread for the probabilistic "
                  "analysis (gamma for costs and disutilities, beta for utilities; 0: fixed). "
                  "The model of states and events: `sim/studies/economics.py`.", _EconomicsFile),
    ]
    for model, title in ((ExponentialDesign, "exponential"), (TrialDesign, "trial"),
                         (CohortDesign, "cohort")):
        lines += _section(f"Power design, `kind = \"{title}\"` (`scenarios/power/*.toml`)",
                          (model.__doc__ or "").strip(), model)
    lines += ["## Limits", "", "Checked before anything is started or written (`sim/limits.py`); "
              "a policy's and a design's paths follow the comparison's rule above.", "",
              "| limit | value | why |", "|---|---|---|",
              *[f"| `{name}` | {value:,} | {why} |" for name, value, why in _limits()], ""]
    return "\n".join(lines).rstrip() + "\n"


def _limits() -> list[tuple[str, int, str]]:
    """(name, value, reason) of each limit: the constants of sim/limits.py with the docstring
    that follows each."""
    import ast  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    from sim import limits  # noqa: PLC0415

    body = ast.parse(inspect.getsource(limits)).body
    return [(node.targets[0].id, getattr(limits, node.targets[0].id), " ".join(after.value.value.split()))
            for node, after in zip(body, body[1:])
            if isinstance(node, ast.Assign) and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)]


def outputs_reference() -> str:
    """docs/outputs.md: the columns of patients.parquet and events.parquet."""
    lines = ["# Output tables", "",
             "Generated by `python -m sim.reports.reference docs/` from `sim/output/schema.py` (the "
             "same meanings are stored in the Parquet schema metadata). All times are months from "
             "the hepatectomy; an event after censoring is not observed (null).", "",
             "## `patients.parquet`: one row per patient", "", "| column | type | meaning |",
             "|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in PATIENT_COLUMNS]
    lines += ["", "## `events.parquet`: one row per event", "", "| column | type | meaning |",
              "|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in EVENT_COLUMNS]
    lines += ["", "## A comparison's `patients/`: the columns above, and", "",
              "`scenario_id` (the policy), `draw` (the parameter draw) and `replicate`; with an "
              "economics file also these (the file's currency; discounted at its rates from the "
              "hepatectomy):", "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | double | {meaning} |" for name, meaning in ECONOMIC_COLUMNS]
    return "\n".join(lines) + "\n"


def write_reference(directory: str | Path) -> dict[str, Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"inputs.md": directory / "inputs.md", "outputs.md": directory / "outputs.md"}
    paths["inputs.md"].write_text(inputs_reference())
    paths["outputs.md"].write_text(outputs_reference())
    return paths


if __name__ == "__main__":
    for path in write_reference(sys.argv[1] if len(sys.argv) > 1 else "docs").values():
        print(path)
