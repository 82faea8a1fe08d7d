"""The seed and mlp steps in JAX: sigmoid layers, the mean squared error over
every element, plain SGD on the whole batch, float32 on the CPU. Two variants:
the whole loop in one `jit` (`lax.fori_loop`), and one `jit` call per step.

    python jax_steps.py CASE.safetensors...
"""

import sys
from functools import partial

import jax
import jax.numpy as jnp

from peer_case import Case, median_us_per_step, report


def forward(layers, x):
    for w, b in layers:
        x = jax.nn.sigmoid(x @ w + b)
    return x


def loss(layers, x, y):
    return jnp.mean((forward(layers, x) - y) ** 2)


def sgd(layers, x, y, lr):
    grads = jax.grad(loss)(layers, x, y)
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, layers, grads)


step = jax.jit(sgd)


@partial(jax.jit, static_argnums=4)
def steps(layers, x, y, lr, n):
    return jax.lax.fori_loop(0, n, lambda _, p: sgd(p, x, y, lr), layers)


def main(paths):
    for path in paths:
        case = Case(path)
        x, y = jnp.asarray(case.x), jnp.asarray(case.y)
        start = [(jnp.asarray(w), jnp.asarray(b)) for w, b in case.layers]
        checked = steps(start, x, y, case.lr, case.check_steps)
        checked_loss = float(loss(checked, x, y))
        case.check("jax", checked_loss)

        def in_one_jit(n):
            jax.block_until_ready(steps(start, x, y, case.lr, n))

        def jit_per_step(n):
            layers = start
            for _ in range(n):
                layers = step(layers, x, y, case.lr)
            jax.block_until_ready(layers)

        for variant, run in [("whole loop in one jit", in_one_jit), ("one jit call per step", jit_per_step)]:
            report("jax " + jax.__version__, variant, case, median_us_per_step(run, case.steps_per_run), checked_loss)


if __name__ == "__main__":
    main(sys.argv[1:])
