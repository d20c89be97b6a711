"""Run a suite: every variant × every seed, on one equal budget, resumable, in parallel.

Equal budget means every run of a suite shares the data, the tokenizer, the number of
steps, the batch (so the tokens), and the learning-rate schedule; only the variant's
GPTConfig overrides differ. A seed sets both the initial weights and the batch order, and
the same seeds are used for every variant.

Layout of a suite directory:

    OUT/suite.json                 the plan: budget, seeds, variants (resolved overrides)
    OUT/runs/<variant>-s<seed>/    an ordinary training run (config.yaml, metrics.jsonl, …)
        result.json                written when the run finished (completed or diverged)
        error.txt                  written when it failed for another reason (rerun next time)

A run with result.json is never rerun; a run directory without one (the suite was
interrupted) continues from its latest checkpoint. Divergence is an outcome: the training
loop stops after a few non-finite steps and result.json records where it happened.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2lab.config import GPTConfig
from gpt2lab.errors import GPT2LabError
from gpt2lab.experiments.variants import Variant
from gpt2lab.files import atomic_write_text
from gpt2lab.options import field_types, typed_values
from gpt2lab.train.config import TrainConfig

SUITE_FILE = "suite.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
FINISHED = ("completed", "nonfinite")
"""RunResult.stopped values that end a run for good (a signal only pauses it)."""


@dataclass(frozen=True)
class Budget:
    """What every run of a suite shares. Defaults per preset are in BUDGETS."""

    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    eval_interval: int
    eval_iters: int
    log_interval: int
    monitor_interval: int
    data: str
    """Prepared data dir; the stories defaults below are prepared on first use."""
    block_size: int | None = None
    """Tokens per sequence (None: the preset's block_size)."""

    def replace(self, **changes: Any) -> Budget:
        return dataclasses.replace(self, **changes)

    def with_steps(self, steps: int) -> Budget:
        """The same budget over `steps` steps; warmup and intervals scale along (at least 1).

        >>> BUDGETS["tiny"].with_steps(20).eval_interval
        2
        """
        if steps < 1:
            raise GPT2LabError(f"steps must be >= 1, got {steps}")

        def scaled(n: int) -> int:
            return max(1, round(n * steps / self.steps))

        return self.replace(
            steps=steps,
            warmup_steps=scaled(self.warmup_steps),
            eval_interval=scaled(self.eval_interval),
            log_interval=scaled(self.log_interval),
            monitor_interval=scaled(self.monitor_interval),
        )


BUDGETS: dict[str, Budget] = {
    # 11 variants × 3 seeds × 200 steps × 8 × 128 tokens ≈ 6.8M tokens: 10.7 min on 2 idle cores.
    "tiny": Budget(
        steps=200,
        batch_size=8,
        lr=2e-3,
        min_lr=2e-4,
        warmup_steps=20,
        eval_interval=20,
        eval_iters=6,
        log_interval=5,
        monitor_interval=10,
        data="data/stories-1024",
    ),
    "mini": Budget(
        steps=2000,
        batch_size=16,
        lr=1e-3,
        min_lr=1e-4,
        warmup_steps=100,
        eval_interval=100,
        eval_iters=20,
        log_interval=10,
        monitor_interval=50,
        data="data/stories-4096",
    ),
    "gpt2": Budget(
        steps=5000,
        batch_size=32,
        lr=6e-4,
        min_lr=6e-5,
        warmup_steps=200,
        eval_interval=250,
        eval_iters=40,
        log_interval=10,
        monitor_interval=100,
        data="data/stories-4096",
    ),
}

STORIES_DATA: dict[str, tuple[int, int]] = {
    "data/stories-1024": (1024, 2_000_000),  # (BPE vocabulary, tokens): tiny CPU suites
    "data/stories-4096": (4096, 5_000_000),  # the training default (gpt2lab train)
}


@dataclass
class SuiteOptions:
    """How `gpt2lab ablate` runs a suite: defaults < a YAML suite file's keys < flags.
    Each field's docstring is its `--flag` help."""

    preset: str = "tiny"
    """model preset: tiny, mini, gpt2"""
    seeds: int = 3
    """seeds per variant"""
    steps: int | None = None
    """steps per run (default: the preset's budget)"""
    out: str | None = None
    """suite directory (default: out/ablation/SUITE-PRESET)"""
    jobs: int | None = None
    """runs in parallel processes (default: CPU min(cores, 8); GPU 1)"""
    threads: int = 1
    """torch threads per parallel run"""
    data: str | None = None
    """prepared data dir (default: the preset's stories data)"""
    device: str = "auto"
    """auto, cpu, cuda, …"""
    progress: bool = True
    """show a progress bar"""


def suite_options(
    file_values: dict[str, Any], flag_values: dict[str, Any], suite: str
) -> SuiteOptions:
    """The options of a suite run: a YAML suite's keys over the defaults, flags over both;
    values typed by `gpt2lab.options`, an unknown key refused in one line."""
    types = field_types(SuiteOptions)
    options = SuiteOptions(**typed_values(types, file_values, "suite option"))
    options = dataclasses.replace(options, **typed_values(types, flag_values, "option"))
    if options.out is None:
        options.out = f"out/ablation/{Path(suite).stem}-{options.preset}"
    return options


@dataclass
class Suite:
    """A planned suite: variants × seeds on one budget, written under `out`."""

    variants: list[Variant]
    preset: str = "tiny"
    seeds: int = 3
    budget: Budget | None = None
    """None: BUDGETS[preset]."""
    out: str = "out/ablation"
    jobs: int = 1
    """Processes training at once; with more than one, each uses `threads` torch threads."""
    threads: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.budget is None:
            if self.preset not in BUDGETS:
                raise GPT2LabError(
                    f"no default budget for preset {self.preset!r}: choose {', '.join(BUDGETS)}"
                )
            self.budget = BUDGETS[self.preset]
        for name in ("seeds", "jobs"):
            if getattr(self, name) < 1:
                raise GPT2LabError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.budget.steps < 1:
            raise GPT2LabError(f"steps must be >= 1, got {self.budget.steps}")
        base = GPTConfig.preset(self.preset)
        self.resolved = {v.name: v.model_overrides(base) for v in self.variants}

    # --- paths -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.out)

    def run_dir(self, variant: str, seed: int) -> Path:
        return self.root / "runs" / run_name(variant, seed)

    # --- what each run is --------------------------------------------------------------------

    def train_config(self, variant: Variant, seed: int) -> TrainConfig:
        """The run's TrainConfig: the shared budget plus this variant's model overrides."""
        b = self.budget
        return TrainConfig(
            data=b.data,
            preset=self.preset,
            model=self.resolved[variant.name],
            out_dir=str(self.root / "runs"),
            name=run_name(variant.name, seed),
            batch_size=b.batch_size,
            block_size=b.block_size,
            max_steps=b.steps,
            lr=b.lr,
            min_lr=b.min_lr,
            warmup_steps=b.warmup_steps,
            eval_interval=b.eval_interval,
            eval_iters=b.eval_iters,
            log_interval=b.log_interval,
            monitor_interval=b.monitor_interval,
            sample_interval=0,
            sample_tokens=60,
            checkpoint_interval=max(b.steps // 3, 1),
            keep_last=1,
            seed=seed,
            threads=self.threads if self.jobs > 1 else 0,
            device=self.device,
            progress=False,
        )

    def plan(self) -> dict[str, Any]:
        """What suite.json records: enough to check a resumed suite has the same budget."""
        return {
            "preset": self.preset,
            "seeds": list(range(self.seeds)),
            "budget": dataclasses.asdict(self.budget),
            "variants": [
                {
                    "name": v.name,
                    "description": v.description,
                    "overrides": self.resolved[v.name],
                }
                for v in self.variants
            ],
        }


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


# ---------------------------------------------------------------------------------------------
# One run (in a worker process or in this one)
# ---------------------------------------------------------------------------------------------


def run_one(config: dict[str, Any]) -> dict[str, Any]:
    """Train one (variant, seed) run; return its outcome. Never raises for a failed run.

    A run directory that exists without result.json continues from its latest checkpoint; one
    killed before its first checkpoint starts again. Finished runs (completed or diverged) get
    result.json; a failure gets error.txt and is rerun by the next invocation.
    """
    from gpt2lab.train import checkpoint, train

    cfg = TrainConfig(**config)
    run_dir = Path(cfg.out_dir) / cfg.name
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    checkpoint.recover(run_dir / "checkpoints")
    resume = checkpoint.latest(run_dir / "checkpoints") is not None
    if not resume:  # nothing to continue from (a kill before the first checkpoint)
        shutil.rmtree(run_dir, ignore_errors=True)
    try:
        result = train(cfg, resume=resume).to_dict()
    except Exception as err:  # noqa: BLE001 - a failed run must not stop the suite
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ERROR_FILE).write_text(message + "\n")
        return {"name": cfg.name, "stopped": "error", "error": message}
    if result["stopped"] in FINISHED:
        write_json(run_dir / RESULT_FILE, result)
    return {"name": cfg.name, **result}


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader sees the old file or the whole new one."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def read_result(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------------------------


def ensure_data(path: str) -> None:
    """Prepare a default stories dataset once, before any worker starts; check others."""
    from gpt2lab.data.prepare import META, read_meta
    from gpt2lab.data.prepared import prepare_stories

    if not (Path(path) / META).is_file() and path in STORIES_DATA:
        vocab, tokens = STORIES_DATA[path]
        print(f"preparing the stories corpus in {path} ({vocab}-token BPE, once)")
        prepare_stories(path, vocab_size=vocab, tokens=tokens, progress=True)
    read_meta(path)


def check_plan(suite: Suite) -> dict[str, Any]:
    """Write suite.json, or check that an existing one has the same budget (for resume).

    Variants may be added to an existing suite; changing the budget, preset or seeds'
    meaning would mix unequal runs, so it is refused.
    """
    path = suite.root / SUITE_FILE
    plan = suite.plan()
    if path.is_file():
        old = json.loads(path.read_text())
        for key in ("preset", "budget"):
            if old[key] != plan[key]:
                raise GPT2LabError(
                    f"{suite.root} holds a suite with a different {key} "
                    f"({old[key]} vs {plan[key]}); choose another --out"
                )
        known = {v["name"]: v for v in old["variants"]}
        for v in plan["variants"]:
            if v["name"] in known and known[v["name"]]["overrides"] != v["overrides"]:
                raise GPT2LabError(
                    f"variant {v['name']} in {suite.root} had overrides "
                    f"{known[v['name']]['overrides']}; rename the new one"
                )
        plan["wall_seconds"] = old.get("wall_seconds", 0.0)
    suite.root.mkdir(parents=True, exist_ok=True)
    write_json(path, plan)
    return plan


def pending(suite: Suite) -> list[TrainConfig]:
    """Runs without result.json, seed by seed (so a cut-short suite has whole seeds)."""
    return [
        suite.train_config(v, seed)
        for seed in range(suite.seeds)
        for v in suite.variants
        if read_result(suite.run_dir(v.name, seed)) is None
    ]


def run_suite(suite: Suite, progress: bool = True) -> dict[str, Any]:
    """Train every pending run of the suite; return {"ran": n, "skipped": n, "failed": [...],
    "seconds": wall time of this call}. Adds the wall time to suite.json."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    ensure_data(suite.budget.data)
    plan = check_plan(suite)
    todo = pending(suite)
    total = len(suite.variants) * suite.seeds
    outcomes: list[dict[str, Any]] = []
    bar = tqdm(
        total=total, initial=total - len(todo), desc="ablate", unit="run", disable=not progress
    )
    earlier = plan.get("wall_seconds", 0.0)

    def record_time() -> None:  # after every run, so a killed suite still says how long
        plan["wall_seconds"] = earlier + time.perf_counter() - started
        write_json(suite.root / SUITE_FILE, plan)

    try:
        for outcome in execute([c.to_dict() for c in todo], suite.jobs):
            outcomes.append(outcome)
            record_time()
            bar.set_postfix_str(f"{outcome['name']}: {outcome['stopped']}")
            bar.update(1)
    finally:
        bar.close()
        record_time()
    return {
        "ran": len(todo),
        "skipped": total - len(todo),
        "failed": [o for o in outcomes if o["stopped"] == "error"],
        "seconds": time.perf_counter() - started,
    }


def execute(configs: list[dict[str, Any]], jobs: int):
    """Yield run_one's outcome for each config, in this process or `jobs` spawned ones."""
    if jobs == 1 or len(configs) <= 1:
        for config in configs:
            yield run_one(config)
        return
    context = multiprocessing.get_context("spawn")  # no forked OpenMP/torch state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_one, config) for config in configs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
