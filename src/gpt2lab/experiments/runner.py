"""Run a suite: every variant over a learning-rate sweep, then over seeds at its best rate.

Equal budget means every run of a suite shares the data, the tokenizer, the number of
steps, the batch (so the tokens), and the shape of the learning-rate schedule (warmup, then
cosine to a tenth of the peak); only the variant's GPTConfig overrides (and, for the
`*_no_warmup` variants, the warmup) differ. A seed sets both the initial weights and the
batch order, and the same seeds are used for every variant: seed s of two variants saw the
same batches (a paired comparison) and, where the shapes agree, the same initial weights.

Two phases, so that every variant is compared at its own best learning rate:

    1. sweep   seed 0 at every peak lr of the budget's grid (log-spaced)
    2. seeds   seeds 1 … S−1 at the variant's best lr: the lowest final val loss of its
               sweep (a diverged run counts as +inf; none finite: the smallest lr)

Layout of a suite directory:

    OUT/suite.json                          the plan: budget, lr grid, seeds, variants
    OUT/runs/<variant>-lr<lr>-s<seed>/      an ordinary training run (config.yaml,
                                            metrics.jsonl, steps.jsonl: every step)
        result.json                written when the run finished (completed or diverged)
        error.txt                  written when it failed for another reason (rerun next time)

A run with result.json is never rerun; a run directory without one (the suite was
interrupted) continues from its latest checkpoint. Divergence is an outcome: the training
loop stops after a few non-finite steps and result.json records where it happened.
"""

from __future__ import annotations

import dataclasses
import json
import math
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
    lrs: tuple[float, ...]
    """The peak learning rates of the sweep (log-spaced)."""
    warmup_steps: int
    eval_interval: int
    eval_iters: int
    log_interval: int
    data: str
    """Prepared data dir; the stories defaults below are prepared on first use."""
    block_size: int | None = None
    """Tokens per sequence (None: the preset's block_size)."""
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Shape overrides on the preset for every variant (the quick suite's small model)."""
    min_lr_ratio: float = 0.1
    """The cosine ends at this fraction of the peak lr (the same shape for every lr)."""
    checkpoints: int = 3
    """Checkpoints per run (where an interrupted run resumes from); the last at the end."""
    sample_tokens: int = 60
    """Tokens of the sample each run writes at its end (the report shows them)."""
    extrapolation_tokens: int = 8192
    """Val tokens the report scores at each context length (positional extrapolation)."""

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
        )


def log_grid(low: float, high: float, n: int) -> tuple[float, ...]:
    """n learning rates from low to high, evenly spaced in log, rounded to 2 digits.

    >>> log_grid(1e-3, 3e-2, 4)
    (0.001, 0.0031, 0.0097, 0.03)
    """
    return tuple(float(f"{low * (high / low) ** (i / (n - 1)):.2g}") for i in range(n))


BUDGETS: dict[str, Budget] = {
    # tiny, 1 thread (measured, docs/ablation.md): a 200-step run takes 24 s alone and about
    # 44 s next to a second one on a 2-core CPU; a deep one (12 × 64) 59 s. The seed suite,
    # (14 tiny + 5 deep variants) × (4 lrs + 2 seeds), ≈ 46 min in 2 processes. Warmup is half the run: with 50 steps post-norm stays at the
    # unigram loss at lr 2e-3, with 100 it trains (and the baseline loses nothing).
    "tiny": Budget(
        steps=200,
        batch_size=8,
        lrs=log_grid(1e-3, 3e-2, 4),
        warmup_steps=100,
        eval_interval=20,
        eval_iters=6,
        log_interval=5,
        data="data/stories-1024",
    ),
    "mini": Budget(
        steps=2000,
        batch_size=16,
        lrs=log_grid(3e-4, 1e-2, 4),
        warmup_steps=200,
        eval_interval=100,
        eval_iters=20,
        log_interval=10,
        data="data/stories-4096",
    ),
    "gpt2": Budget(
        steps=5000,
        batch_size=32,
        lrs=log_grid(2e-4, 6e-3, 4),
        warmup_steps=500,
        eval_interval=250,
        eval_iters=40,
        log_interval=10,
        data="data/stories-4096",
    ),
}
"""Per preset. The tiny lr grid reaches 3e-2 so that instability can show."""

QUICK = Budget(
    steps=4,
    batch_size=2,
    lrs=(1e-3, 3e-2),
    warmup_steps=1,
    eval_interval=4,
    eval_iters=1,
    log_interval=1,
    data="data/stories-1024",
    block_size=32,
    model={"n_layer": 2, "n_embd": 32},
    checkpoints=1,
    sample_tokens=8,
    extrapolation_tokens=512,
)
"""`--quick`, the test suite's: every claim, a 2-layer 32-wide model, 4 steps, 2 lrs (about
0.5 s per run on one core; the seed suite with 2 seeds is 57 runs)."""

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
    lrs: str | None = None
    """peak learning rates of the sweep, comma-separated, e.g. 1e-3,3e-3 (default: the
    preset's grid)"""
    quick: bool = False
    """the test-sized budget: a 2-layer, 32-wide model, 4 steps, 2 learning rates"""
    out: str | None = None
    """suite directory (default: out/ablation/SUITE-PRESET, or SUITE-quick)"""
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
        scale = "quick" if options.quick else options.preset
        options.out = f"out/ablation/{Path(suite).stem}-{scale}"
    return options


def parse_lrs(text: str) -> tuple[float, ...]:
    """'1e-3, 3e-3' -> (0.001, 0.003): positive finite numbers, at least one, no repeats.

    >>> parse_lrs("3e-3,1e-3")
    (0.001, 0.003)
    """
    try:
        values = sorted({float(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise GPT2LabError(f"lrs must be numbers separated by commas, got {text!r}") from None
    if not values or not all(0 < v < math.inf for v in values):
        raise GPT2LabError(f"lrs must be positive finite numbers, got {text!r}")
    return tuple(values)


def suite_budget(options: SuiteOptions) -> Budget:
    """The budget the options ask for: the preset's (or QUICK), then --steps, --lrs and
    --data."""
    if options.quick and options.preset != "tiny":
        raise GPT2LabError(f"--quick shrinks the tiny preset; drop --preset {options.preset}")
    if options.quick:
        budget = QUICK
    elif options.preset in BUDGETS:
        budget = BUDGETS[options.preset]
    else:
        raise GPT2LabError(
            f"no default budget for preset {options.preset!r}: use {', '.join(BUDGETS)}"
        )
    if options.steps is not None:
        budget = budget.with_steps(options.steps)
    if options.lrs is not None:
        budget = budget.replace(lrs=parse_lrs(options.lrs))
    if options.data:
        budget = budget.replace(data=options.data)
    return budget


@dataclass(frozen=True)
class RunKey:
    """One run of a suite: a variant at a peak learning rate and a seed."""

    variant: str
    lr: float
    seed: int

    @property
    def name(self) -> str:
        """'baseline-lr0.003-s1': the run's directory under OUT/runs."""
        return run_name(self.variant, self.lr, self.seed)


@dataclass
class Suite:
    """A planned suite: variants × (lr sweep on seed 0, then seeds at the best lr)."""

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
        base = GPTConfig.preset(self.preset, **self.budget.model)
        self.resolved = {
            v.name: {**self.budget.model, **v.model_overrides(base)} for v in self.variants
        }
        self.by_name = {v.name: v for v in self.variants}

    # --- paths -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return Path(self.out)

    def run_dir(self, key: RunKey) -> Path:
        return self.root / "runs" / key.name

    # --- which runs --------------------------------------------------------------------------

    def sweep(self) -> list[RunKey]:
        """Phase 1: seed 0 of every variant at every lr of the grid."""
        return [RunKey(v.name, lr, 0) for v in self.variants for lr in self.budget.lrs]

    def best_lr(self, variant: str) -> float | None:
        """The lr of the lowest final val loss in the variant's finished sweep (ties: the
        smaller lr; every run diverged: the smallest lr); None while a sweep run is missing."""
        results = [read_result(self.run_dir(RunKey(variant, lr, 0))) for lr in self.budget.lrs]
        return None if None in results else best_of(self.budget.lrs, results)

    def seed_runs(self) -> list[RunKey]:
        """Phase 2: seeds 1 … S−1 of every variant whose sweep is done, at its best lr."""
        keys = []
        for seed in range(1, self.seeds):
            for v in self.variants:
                lr = self.best_lr(v.name)
                if lr is not None:
                    keys.append(RunKey(v.name, lr, seed))
        return keys

    # --- what each run is --------------------------------------------------------------------

    def train_config(self, key: RunKey) -> TrainConfig:
        """The run's TrainConfig: the shared budget at this lr, plus the variant's changes."""
        b, variant = self.budget, self.by_name[key.variant]
        return TrainConfig(
            data=b.data,
            preset=self.preset,
            model=self.resolved[variant.name],
            out_dir=str(self.root / "runs"),
            name=key.name,
            batch_size=b.batch_size,
            block_size=b.block_size,
            repeat_rows=0.0,  # the variants are compared on the data alone
            max_steps=b.steps,
            lr=key.lr,
            min_lr=key.lr * b.min_lr_ratio,
            decay="cosine",
            warmup_steps=b.warmup_steps if variant.warmup else 0,
            eval_interval=b.eval_interval,
            eval_iters=b.eval_iters,
            log_interval=b.log_interval,
            monitor_interval=0,  # steps.jsonl has what the report reads, every step
            step_log=True,
            tensorboard=False,
            sample_interval=0,
            sample_tokens=b.sample_tokens,
            checkpoint_interval=max(b.steps // b.checkpoints, 1),
            keep_last=1,
            seed=key.seed,
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
                    "warmup": v.warmup,
                    "reference": v.reference,
                }
                for v in self.variants
            ],
        }


def run_name(variant: str, lr: float, seed: int) -> str:
    return f"{variant}-lr{lr:g}-s{seed}"


def best_of(lrs: tuple[float, ...], results: list[dict[str, Any]]) -> float:
    """The lr whose result has the lowest final val loss (ties: the first, the smaller lr;
    all diverged: the smallest lr).

    >>> best_of((1e-3, 3e-3), [{"stopped": "completed", "val_loss": 4.0},
    ...                        {"stopped": "nonfinite", "val_loss": None}])
    0.001
    """
    losses = [final_loss(r) for r in results]
    return lrs[losses.index(min(losses))]


def final_loss(result: dict[str, Any]) -> float:
    """A finished run's last val loss; +inf when it diverged (or never evaluated)."""
    if result["stopped"] != "completed" or result.get("val_loss") is None:
        return math.inf
    return float(result["val_loss"])


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
    plan = json.loads(json.dumps(suite.plan()))  # as read back: tuples become lists
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


def pending(keys: list[RunKey], suite: Suite) -> list[TrainConfig]:
    """The runs among `keys` without result.json."""
    return [suite.train_config(k) for k in keys if read_result(suite.run_dir(k)) is None]


def run_suite(suite: Suite, progress: bool = True) -> dict[str, Any]:
    """Train every pending run of the suite, the sweep first, then the seeds at each
    variant's best lr; return {"ran": n, "skipped": n, "failed": [...], "seconds": wall time
    of this call}. Adds the wall time to suite.json."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    ensure_data(suite.budget.data)
    plan = check_plan(suite)
    total = len(suite.variants) * (len(suite.budget.lrs) + suite.seeds - 1)
    outcomes: list[dict[str, Any]] = []
    ran = 0
    earlier = plan.get("wall_seconds", 0.0)
    bar = tqdm(total=total, desc="ablate", unit="run", disable=not progress)

    def record_time() -> None:  # after every run, so a killed suite still says how long
        plan["wall_seconds"] = earlier + time.perf_counter() - started
        write_json(suite.root / SUITE_FILE, plan)

    try:
        for phase in (suite.sweep, suite.seed_runs):
            keys = phase()
            todo = pending(keys, suite)
            bar.update(len(keys) - len(todo))
            ran += len(todo)
            for outcome in execute([c.to_dict() for c in todo], suite.jobs):
                outcomes.append(outcome)
                record_time()
                bar.set_postfix_str(f"{outcome['name']}: {outcome['stopped']}")
                bar.update(1)
    finally:
        bar.close()
        record_time()
    return {
        "ran": ran,
        "skipped": total - ran,
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
