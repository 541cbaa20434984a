"""`crlm-sim posterior`: the posterior sample by synthetic likelihood on an emulator, its chains,
its diagnostics (ArviZ) and its coverage by simulation-based calibration (`calibration.emulator`).

Every stage writes its state into --out and is skipped when its file is there, so an interrupted
run continues where it stopped: design.csv (the simulated design, appended a batch at a time),
noise.csv (synthetic studies for the likelihood's covariance, appended), chains.parquet,
studies.csv (the synthetic studies of the coverage check, appended), ranks.csv, coverage.csv.
run.json records the settings the folder was made with; a folder made with others is refused
unless --resume asks to continue it, and every file resumed from is checked before anything is
written (`calibration.posterior_state`)."""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

from calibration.posterior_state import DEFAULTS, MINIMUM
from sim.errors import InputError
from sim.execution.executor import add_execution_options, check_execution_options, executor_from

__all__ = ["register_posterior"]

PRIOR = Path(__file__).with_name("prior.csv")


def register_posterior(commands) -> None:
    parser = commands.add_parser("posterior", help="the posterior sample by synthetic likelihood "
                                 "on an emulator, with its chains and its coverage")
    def sized(name: str, text: str) -> None:   # default None: --resume takes the folder's
        low = MINIMUM[name][0]
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"{text} (default: {DEFAULTS[name]}, at least {low})")

    sized("design", "prior draws simulated to train the emulator")
    sized("studies", "synthetic studies of the coverage check (simulation-based calibration)")
    sized("noise_studies", "synthetic studies of the paper's size whose residuals from the "
                           "emulator give the likelihood's covariance")
    sized("chains", "independence Metropolis chains")
    sized("steps", "steps of each chain")
    parser.add_argument("--posterior-size", type=int, default=1000,
                        help="draws of the installed sample (distinct states of the chains, "
                             "evenly spaced)")
    sized("seed", "seed of the design, chains and studies")
    parser.add_argument("--out", type=Path, default=Path("calibration/runs/posterior"),
                        help="directory of the run's state and results (new or empty, or the "
                             "folder of a run made with the same settings, which is continued)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out with the settings it was made with")
    parser.add_argument("--install", action="store_true",
                        help="ship the sample, its chains and the coverage with the package")
    add_execution_options(parser, resume=False)
    parser.set_defaults(handler=_posterior)


def _posterior(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from calibration import emulator as em  # noqa: PLC0415
    from calibration import posterior_state as state  # noqa: PLC0415
    from calibration.diagnostics import chain_summary  # noqa: PLC0415
    from calibration.objective import Objective  # noqa: PLC0415
    from calibration.space import SPACE  # noqa: PLC0415
    from calibration.targets import load_targets  # noqa: PLC0415
    from sim.model.params import load_params  # noqa: PLC0415
    from sim.model.policy import load_policy  # noqa: PLC0415

    check_execution_options(args)
    clock = time.perf_counter()
    seconds = {}
    start, _ = load_params()
    policy = load_policy(Path(str(resources.files("sim") / "scenarios" / "baseline.toml")))
    objective = Objective(start, policy, load_targets())
    prior = em.Prior.read(PRIOR)
    ids, log = em.likelihood_scale(objective)
    observed, bound = em.observed_and_bounds(objective)
    inputs = state.RunInputs(tuple(d.path for d in SPACE), tuple(ids), {
        "prior": state.digest([prior.mean.tolist(), prior.sd.tolist()]),
        "parameters": start.digest(), "policy": policy.digest(),
        "figures": state.digest([observed.tolist(), bound.tolist(), log.tolist()])})
    settings = state.settings_for(args, args.out, inputs)      # nothing is written before these
    state.check_files(args.out, settings, inputs, prior)
    seed = settings["seed"]
    args.out.mkdir(parents=True, exist_ok=True)
    state.write_record(args.out, settings, inputs)
    executor = executor_from(args)
    try:
        design = em.simulate_design(objective, start, prior, settings["design"], seed, executor,
                                    args.out)
        seconds["design"] = time.perf_counter() - clock
        x = design[[d.path for d in SPACE]].to_numpy(float)
        y = np.column_stack([em.on_likelihood_scale(design[ids].to_numpy(float), log),
                             design["lyg_intensive_over_esmo"].to_numpy(float)])
        keep = np.isfinite(y).all(axis=1)
        if keep.sum() < MINIMUM["design"][0]:
            raise InputError(f"--design: {keep.sum()} of the {settings['design']} design points "
                             f"gave every figure, and the emulator needs "
                             f"{MINIMUM['design'][0]}; ask for more (the points made are kept)")
        emulator = em.Emulator(x[keep], y[keep])
        pd.DataFrame({"output": [*ids, "lyg_intensive_over_esmo"], "r2": emulator.r2,
                      "residual_sd": emulator.residuals.std(axis=0)}).to_csv(
            args.out / "emulator.csv", index=False)
        noise_truths = prior.draw(settings["noise_studies"], seed + 2)
        noise = em.simulate_studies(objective, start, noise_truths, seed + 7, executor,
                                    args.out / "noise.csv")
        covariance = em.noise_covariance(emulator, noise_truths, noise)
        likelihood = em.SyntheticLikelihood(emulator, observed, covariance, bound)
        chains_path = args.out / "chains.parquet"
        if chains_path.exists():
            chains = pd.read_parquet(chains_path)
        else:
            chains = em.sample_posterior(likelihood, prior, em.SamplerSettings(
                settings["chains"], settings["steps"], seed=seed))
            chains.to_parquet(chains_path, index=False)
        diagnostics = chain_summary(chains, [d.path for d in SPACE])
        diagnostics.to_csv(args.out / "diagnostics.csv", index=False)
        sample = _thinned(chains, args.posterior_size, seed)
        sample.to_csv(args.out / "posterior.csv", index=False)
        seconds["posterior"] = time.perf_counter() - clock - sum(seconds.values())
        ranks, coverage = em.coverage_study(objective, start, prior, emulator, covariance, bound,
                                            settings["studies"], seed, executor, args.out)
        ranks.to_csv(args.out / "ranks.csv", index=False)
        coverage.to_csv(args.out / "coverage.csv", index=False)
        seconds["coverage"] = time.perf_counter() - clock - sum(seconds.values())
    finally:
        executor.close()
    summary = {
        "design": settings["design"], "design_kept": int(keep.sum()),
        "noise_studies": settings["noise_studies"], "studies": settings["studies"],
        "chains": settings["chains"], "steps": settings["steps"], "posterior_size": len(sample),
        "acceptance": round(float(chains.loc[chains["step"] > 0, "accepted"].mean()), 3),
        "max_r_hat": round(float(diagnostics["r_hat"].max()), 4),
        "min_ess_bulk": round(float(diagnostics["ess_bulk"].min()), 1),
        "min_ess_tail": round(float(diagnostics["ess_tail"].min()), 1),
        "emulator_min_r2": round(float(emulator.r2.min()), 3),
        "seconds": {k: round(v, 1) for k, v in seconds.items()}, "workers": executor.workers,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.install:
        data = Path(str(resources.files("sim") / "data"))
        sample.to_csv(data / "posterior.csv", index=False)
        chains.to_parquet(data / "chains.parquet", index=False)
        coverage.to_csv(Path(__file__).with_name("coverage.csv"), index=False)
        ranks.to_csv(Path(__file__).with_name("ranks.csv"), index=False)
    print(coverage.to_string(index=False))
    print(json.dumps(summary))
    return 0


def _thinned(chains, size: int, seed: int):
    """`size` distinct draws from the chains: in each chain, its distinct states after the first
    (the steps where a proposal was accepted; the first states if no chain moved) taken evenly
    spaced, then a seeded random order; each keeps its `chain` and `step`."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from calibration.space import SPACE  # noqa: PLC0415

    moved = chains[(chains["step"] > 0) & chains["accepted"]]
    if moved.empty:     # no chain moved (a few steps): their first states are all there is
        moved = chains[chains["step"] == 0]
    per_chain = -(-size // moved["chain"].nunique())
    picked = []
    for _, group in moved.groupby("chain"):
        index = np.unique(np.linspace(0, len(group) - 1, per_chain).round().astype(int))
        picked.append(group.iloc[index])
    sample = pd.concat(picked).iloc[:size][["chain", "step", *[d.path for d in SPACE]]]
    order = np.random.default_rng([seed, 3]).permutation(len(sample))
    return sample.iloc[order].reset_index(drop=True)
