"""Two operator replicas on one Lease: one acts, the other waits and takes over."""

from __future__ import annotations

import time

import pytest
from kubernetes import client as kube_client

from tests.operator.harness import OperatorProcess
from tests.operator.jobs import on_kwok
from tests.polling import eventually

pytestmark = pytest.mark.cluster


def leading(process: OperatorProcess) -> bool:
    return process.sample("densenet_operator_leader") == 1


def test_one_replica_acts_and_the_other_takes_over_when_it_dies(jobs, operator):
    first = operator()
    eventually(lambda: leading(first), what="the first replica to lead")
    second = operator()
    jobs.create(on_kwok("pair", "cpu", 1, replicas=3).build())
    jobs.wait_phase("pair", "Running")
    time.sleep(2)  # several lease renewals: the follower must stay one
    assert not leading(second)
    assert second.sample("densenet_operator_pods_created_total") == 0
    assert first.sample("densenet_operator_pods_created_total") == 3
    before = {p.metadata.name: p.metadata.uid for p in jobs.pods("pair")}
    first.kill()  # SIGKILL: the Lease is not released, it expires (3 s in the tests)
    eventually(lambda: leading(second), timeout=30, what="the second replica to take over")
    jobs.create(on_kwok("after", "cpu", 1, replicas=2).build())
    jobs.wait_phase("after", "Running")
    status = jobs.status("pair")
    assert (status["attempt"], status["restarts"], status["preemptions"]) == (0, 0, 0)
    assert {p.metadata.name: p.metadata.uid for p in jobs.pods("pair")} == before


def test_a_clean_stop_hands_the_lease_over_at_once(jobs, operator, api_client):
    leases = kube_client.CoordinationV1Api(api_client)
    first = operator()
    eventually(lambda: leading(first), what="the first replica to lead")
    second = operator()
    lease = leases.read_namespaced_lease("densenet-operator", jobs.namespace)
    transitions = lease.spec.lease_transitions
    first.stop()  # SIGTERM: kopf stops and the Lease is released
    eventually(lambda: leading(second), timeout=5, interval=0.1, what="the hand-over")
    lease = leases.read_namespaced_lease("densenet-operator", jobs.namespace)
    assert lease.spec.lease_transitions == transitions + 1
