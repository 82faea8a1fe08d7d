"""The seed and mlp steps in TensorFlow: sigmoid layers, the mean squared
error over every element, plain SGD on the whole batch, float32 on the CPU.
Two variants: the loop inside one `tf.function`, and one `tf.function` call
per step.

    python tf_steps.py CASE.safetensors...
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

from peer_case import Case, median_us_per_step, report  # noqa: E402


def loss(layers, x, y):
    a = x
    for w, b in layers:
        a = tf.sigmoid(a @ w + b)
    return tf.reduce_mean((a - y) ** 2)


def sgd(layers, x, y, lr):
    with tf.GradientTape() as tape:
        value = loss(layers, x, y)
    for variable, grad in zip(layers_flat(layers), tape.gradient(value, layers_flat(layers))):
        variable.assign_sub(lr * grad)


def layers_flat(layers):
    return [v for layer in layers for v in layer]


@tf.function
def step(layers, x, y, lr):
    sgd(layers, x, y, lr)


@tf.function
def steps(layers, x, y, lr, n):
    for _ in tf.range(n):
        sgd(layers, x, y, lr)


def main(paths):
    for path in paths:
        case = Case(path)
        x, y = tf.constant(case.x), tf.constant(case.y)
        lr = tf.constant(case.lr)
        layers = [(tf.Variable(w), tf.Variable(b)) for w, b in case.layers]

        def restart():
            for (w, b), (w0, b0) in zip(layers, case.layers):
                w.assign(w0)
                b.assign(b0)

        steps(layers, x, y, lr, tf.constant(case.check_steps))
        checked_loss = float(loss(layers, x, y))
        case.check("tensorflow", checked_loss)

        def in_one_function(n):
            restart()
            steps(layers, x, y, lr, tf.constant(n))
            layers[-1][1].numpy()

        def function_per_step(n):
            restart()
            for _ in range(n):
                step(layers, x, y, lr)
            layers[-1][1].numpy()

        variants = [("loop inside one tf.function", in_one_function), ("one tf.function call per step", function_per_step)]
        for variant, run in variants:
            report("tensorflow " + tf.__version__, variant, case, median_us_per_step(run, case.steps_per_run),
                   checked_loss)


if __name__ == "__main__":
    main(sys.argv[1:])
