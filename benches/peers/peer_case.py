"""What every peer shares: reading a case `wgpu-mlp bench --export` wrote,
checking a peer's loss after the case's check steps against ours, and the
timing rule of `wgpu-mlp bench` (a warm-up, then the median of 7 timed runs,
each waiting for its result)."""

import json
import statistics
import sys
import time

import numpy as np
from safetensors import safe_open

RUNS = 7
# Steps per timed run: long enough that a timer's and a call's overhead fade.
STEPS_PER_RUN = {"seed": 1000, "mlp": 50}
# How far a peer's loss after the check steps may be from ours: the same f32
# step summed in another order.
LOSS_RTOL = 1e-4


class Case:
    """A case's data (x, y), initial layers [(w (IN, OUT), b (OUT))] and settings."""

    def __init__(self, path):
        with safe_open(path, framework="np") as f:
            meta = f.metadata()
            self.x = f.get_tensor("x")
            self.y = f.get_tensor("y")
            sizes = [int(s) for s in meta["sizes"].split(",")]
            self.layers = [(f.get_tensor(f"layers.{l}.weight"), f.get_tensor(f"layers.{l}.bias"))
                           for l in range(len(sizes) - 1)]
        if (meta["activation"], meta["output"], meta["loss"]) != ("sigmoid", "sigmoid", "mse"):
            sys.exit(f"error: {path}: the peers build sigmoid layers with an MSE loss, not {meta}")
        self.name = meta["case"]
        self.sizes = sizes
        self.lr = np.float32(meta["lr"])
        self.check_steps = int(meta["check_steps"])
        self.loss_after = float(meta["loss_after_check_steps"])
        self.steps_per_run = STEPS_PER_RUN[self.name]

    def check(self, peer, loss):
        """Exits unless `loss`, the peer's after the check steps, is ours."""
        if not abs(loss - self.loss_after) <= LOSS_RTOL * abs(self.loss_after):
            sys.exit(f"error: {peer} on {self.name}: loss {loss} after {self.check_steps} steps, "
                     f"wgpu-mlp's is {self.loss_after} (relative tolerance {LOSS_RTOL})")


def median_us_per_step(run_steps, steps):
    """run_steps(steps) runs and waits for `steps` steps; one warm-up, then
    the median of RUNS timed runs, in microseconds per step."""
    run_steps(steps)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run_steps(steps)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / steps * 1e6


def report(framework, variant, case, us_per_step, loss):
    """One JSON line per measurement, read by scripts/bench-peers."""
    print(json.dumps({"framework": framework, "variant": variant, "case": case.name,
                      "us_per_step": us_per_step, "loss_after_check_steps": loss}), flush=True)
