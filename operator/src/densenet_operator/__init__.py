"""kopf operator for DenseNetTrainingJob."""
