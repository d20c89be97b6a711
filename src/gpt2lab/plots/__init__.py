"""Every matplotlib figure of gpt2lab: pure functions, data in, `Figure` out.

A leaf: imports matplotlib and numpy only, never torch or other gpt2lab modules, so the
figures can be drawn from saved metrics without a model. Modules: `training` (loss curves,
gradient and activation statistics) and `attention` (heatmaps, head grids, logit lens).
"""
