"""The network is the paper's DenseNet-121; --dense_blocks gives the family's others."""

from __future__ import annotations

from densenet_trainer.config import ModelConfig
from densenet_trainer.model import build_model


def test_parameter_count_at_1000_classes() -> None:
    model = build_model(ModelConfig(), num_classes=1000, image_size=224)
    assert model.count_params() == 8_062_504


def test_dropout_and_he_init_keep_the_shape() -> None:
    model = build_model(ModelConfig(dropout_rate=0.3, initializer="he_normal"), 10, 32)
    assert any(layer.name == "dropout" for layer in model.layers)
    assert model.output_shape == (None, 10)
    # 1024 features into 10 classes replace the 1000-class head.
    assert model.count_params() == 8_062_504 - 1024 * 1000 - 1000 + 1024 * 10 + 10


def test_dense_blocks_build_the_other_densenets() -> None:
    """DenseNet-169's blocks give Keras' DenseNet169 (14,307,880 parameters at 1000 classes);
    the tests' 1,1,1,1 is the same network family, named for its blocks."""
    model = build_model(ModelConfig(dense_blocks=(6, 12, 32, 32)), 1000, 224)
    assert model.count_params() == 14_307_880
    tiny = build_model(ModelConfig(dense_blocks=(1, 1, 1, 1)), 10, 32)
    assert tiny.name == "densenet_1_1_1_1"
    assert tiny.output_shape == (None, 10)
