"""DenseNet-121 TensorFlow trainer."""
