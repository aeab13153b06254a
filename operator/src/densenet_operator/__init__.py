"""kopf operator for DenseNetTrainingJob."""

from importlib import metadata

__version__ = metadata.version("densenet-operator")

# The trainer image a job gets when spec.image is empty (`--trainer-image` overrides it).
DEFAULT_TRAINER_IMAGE = f"densenet-trainer:{__version__}"
