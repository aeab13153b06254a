"""The network most tests train: DenseNet with one layer in each of its four dense blocks.

The trainer's ``--dense_blocks`` builds it through the same Keras DenseNet builder as
DenseNet-121, so every code path a test exercises (data, steps, checkpoints, SIGTERM,
restarts, export) is the product's; only the depth differs. DenseNet-121 takes ~39 s on
2 cores to trace its first training step, this one ~5 s. The tests that must see the real
network use the default: tests/trainer/test_model.py (its parameter count), test_learns.py,
tests/images (the image trains DenseNet-121) and tests/e2e/test_demo.py (`make demo`).
"""

TINY_BLOCKS = "1,1,1,1"
TINY_ARGS = ["--dense_blocks", TINY_BLOCKS]
