"""Child process of test_atomic_export: export a one-layer model whose output is VALUE through
densenet_trainer.export.replace_directory, and stop at STAGE (print ``paused: STAGE``, sleep)
for the test to SIGKILL it there.

    python export_child.py PATH VALUE STAGE

Stages: ``writing`` (the new SavedModel half written beside the old one), ``written`` (it is
complete, nothing renamed yet), ``aside`` (the old one renamed aside, the new one not yet in
place), ``in_place`` (the new one in place, the old one not yet deleted), ``none`` (run to the
end and print ``done``).
"""

from __future__ import annotations

import os
import sys
import time

import tensorflow as tf

from densenet_trainer import compat, export

STAGES = ("writing", "written", "aside", "in_place", "none")


def model(value: float) -> tf.keras.Model:
    keras = compat.keras
    inputs = keras.Input([2])
    dense = keras.layers.Dense(
        1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value)
    )
    return keras.Model(inputs, dense(inputs))


def main() -> None:
    path, value, stage = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    assert stage in STAGES, stage
    final = os.path.abspath(path)
    new, old = export._beside(path)

    def pause(where: str) -> None:
        if stage == where:
            print(f"paused: {where}", flush=True)
            time.sleep(600)

    def write(directory: str) -> None:
        assert directory == new
        if stage == "writing":
            os.makedirs(os.path.join(directory, "variables"))
            with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
                f.write(b"\x08\x01half")
            pause("writing")
        compat.export_saved_model(model(value), directory)
        pause("written")

    rename = os.rename

    def pausing_rename(src: str, dst: str) -> None:
        rename(src, dst)
        if os.path.abspath(dst) == old:
            pause("aside")
        elif os.path.abspath(dst) == final:
            pause("in_place")

    os.rename = pausing_rename  # this process only
    export.replace_directory(path, write)
    print("done", flush=True)


if __name__ == "__main__":
    main()
