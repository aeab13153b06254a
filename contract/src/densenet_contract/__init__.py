"""What densenet-operator and densenet-trainer agree on, in one place.

Pure Python with no dependencies, importable on the trainer's Python 3.9 vendor stacks and in
the operator image without TensorFlow. Both packages import these names instead of writing the
values again; copies that cannot import them (the CRD, the chart, the Dockerfiles) are checked
against them by tests/contract.

Modules, one job each: :mod:`exitcodes`, :mod:`ports`, :mod:`env`, :mod:`metrics`,
:mod:`labels`, :mod:`trainer_cli`, :mod:`image`.
"""
