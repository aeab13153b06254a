"""DenseNet-121 from keras.applications, with an optional dropout before the classifier."""

from __future__ import annotations

import sys
from typing import Any

from .compat import keras
from .config import DENSENET121_BLOCKS, ModelConfig


def build_model(config: ModelConfig, num_classes: int, image_size: int) -> Any:
    """DenseNet-121 returning logits (softmax lives in the loss and in the export).

    keras.applications' DenseNet121 is the paper's network: growth 32, blocks 6-12-24-16,
    bottlenecks, compression 0.5; 8,062,504 parameters at 1000 classes.
    """
    shape = (image_size, image_size, 3)
    blocks = tuple(config.dense_blocks)
    backbone = _densenet(blocks)(include_top=False, weights=None, input_shape=shape, pooling="avg")
    x = backbone.output
    if config.dropout_rate > 0:
        x = keras.layers.Dropout(config.dropout_rate, name="dropout")(x)
    # float32 logits keep the softmax cross-entropy stable under mixed precision.
    logits = keras.layers.Dense(num_classes, name="predictions", dtype="float32")(x)
    name = (
        "densenet121" if blocks == DENSENET121_BLOCKS else "densenet_" + "_".join(map(str, blocks))
    )
    model = keras.Model(backbone.input, logits, name=name)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.bn_momentum
    if config.initializer != "keras":
        _reinitialize(model, config.initializer)
    return model


def _densenet(blocks: tuple[int, ...]) -> Any:
    """keras.applications.DenseNet121, or the DenseNet builder it calls (the same module in
    Keras 2 and 3, not exported by either) with other block sizes."""
    if blocks == DENSENET121_BLOCKS:
        return keras.applications.DenseNet121
    builder = sys.modules[keras.applications.DenseNet121.__module__].DenseNet

    def densenet(**kwargs: Any) -> Any:
        return builder(list(blocks), **kwargs)

    return densenet


def _reinitialize(model: Any, name: str) -> None:
    init = keras.initializers.get(name)
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            kernel.assign(init(kernel.shape, dtype=kernel.dtype))


def with_softmax(model: Any) -> Any:
    """The served model: class probabilities instead of logits."""
    probs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(model.output)
    return keras.Model(model.input, probs, name="densenet121_serving")
