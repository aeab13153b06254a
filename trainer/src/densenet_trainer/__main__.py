"""``python -m densenet_trainer``: the same as ``densenet-train``."""

from __future__ import annotations

from densenet_trainer.cli import main

raise SystemExit(main())
