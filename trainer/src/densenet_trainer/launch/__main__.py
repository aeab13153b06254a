"""``python -m densenet_trainer.launch``: the same as ``densenet-launch``."""

from __future__ import annotations

from densenet_trainer.launch import main

raise SystemExit(main())
