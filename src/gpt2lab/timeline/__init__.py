"""The training timeline: what changed at step N (`gpt2lab timeline runs/NAME`).

A run trained with `--keep-every N` keeps a checkpoint every N steps. The timeline puts, for
each kept checkpoint, side by side:

    val loss      recomputed from the checkpoint: the run's first `eval_iters` val batches of
                  batch_size × block_size tokens, in order — the trainer's own evaluation, so
                  at a step that was evaluated it equals metrics.jsonl's val_loss (for a run
                  of one process in float32; a multi-GPU run evaluated other batches per rank)
    sample        the run's sample prompt continued as training does (temperature 0.8, top-k
                  40, the run's seed): the text samples.txt holds at that step, if one was due
    head roles    for each role of `interp.heads.ROLE_RULES`, the best score any head reaches
                  on the stories probes, and how many heads pass the role's threshold
    cloze         `evaluate.cloze_score` on the same probes: the right word (" were" / " was",
                  " her" / " him") more likely than the wrong one

and, over the whole train-loss curve, the steps where its slope changed (`slope_changes`).

    >>> timeline = build_timeline("runs/NAME")                       # doctest: +SKIP
    >>> [(c.step, round(c.val_loss, 2)) for c in timeline.checkpoints]  # doctest: +SKIP
    [(50, 3.83), (100, 3.04), (150, 2.67), ...]

Modules: slopes (`slope_changes`, pure NumPy), build (`loss_curve`: cheap, metrics.jsonl
only; `checkpoint_summary`: seconds, one checkpoint — the two halves a viewer's step slider
can fill lazily; `build_timeline`: both), report (`write_timeline`: timeline.md, .json, .png).
The names below load lazily, so `gpt2lab timeline --help` imports neither numpy nor torch.
"""

from __future__ import annotations

from gpt2lab.lazy import lazy_attributes

_LAZY = {
    **{
        name: "gpt2lab.timeline.slopes"
        for name in ("SlopeChange", "SlopeFit", "bin_means", "hinge_fit", "slope_changes")
    },
    **{
        name: "gpt2lab.timeline.build"
        for name in (
            "LossCurve",
            "TimelineInputs",
            "RoleBest",
            "CheckpointSummary",
            "Timeline",
            "checkpoint_dirs",
            "loss_curve",
            "make_inputs",
            "checkpoint_summary",
            "build_timeline",
            "timeline_data",
        )
    },
    **{
        name: "gpt2lab.timeline.report"
        for name in ("write_timeline", "timeline_markdown", "what_changed", "slope_text")
    },
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
