"""Labels and annotations the operator puts on its child objects that something else reads:
the operator selects its pods by them, the chart's PodMonitor selects trainer pods and turns
the accelerator label into a series label, runbooks and tests find a job's pods."""

from __future__ import annotations

# On every child object (pods, Service, ConfigMaps, PodGroup).
JOB = "densenet.dev/job-name"
ACCELERATOR = "densenet.dev/accelerator"
NAME = "app.kubernetes.io/name"
MANAGED_BY = "app.kubernetes.io/managed-by"
TRAINER_APP = "densenet-trainer"  # the value of NAME
MANAGER = "densenet-operator"  # the value of MANAGED_BY
# On pods only.
REPLICA_INDEX = "densenet.dev/replica-index"  # the pod's index in the job, 0 = the chief's pod
ATTEMPT = "densenet.dev/attempt"  # the whole-job restart the pod belongs to

# Annotation on a pod that runs privileged (Gaudi hostDevices); the operator posts an Event.
PRIVILEGED = "densenet.dev/privileged"
