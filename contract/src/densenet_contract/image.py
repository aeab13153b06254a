"""Facts about the trainer image that the operator's pods depend on.

Dockerfile.trainer creates the user (``ARG UID``, ``USER ${UID}:${UID}``) and cannot import
this module; tests/contract checks that it builds the same numbers.
"""

from __future__ import annotations

# The trainer image's user and primary group. Trainer pods run as them (Pod Security
# "restricted" wants an explicit non-root user) and give volumes this group (fsGroup), so a
# checkpoint volume whose root belongs to root is still writable.
TRAINER_UID = 10001
TRAINER_GID = TRAINER_UID
# The image's HOME: Keras, TensorFlow and the vendor stacks keep caches and logs there, so it
# must stay writable when the root filesystem is read-only (an emptyDir is mounted there).
TRAINER_HOME = "/tmp"
