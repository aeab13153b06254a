"""The chief, host of TensorFlow's coordination service, leaves after the job's other
processes: it waits until none of them listens at its TF_CONFIG address, or gives up after a
bound. The end-to-end proof is tests/trainer/test_multiworker.py (no heartbeat error in a
2-worker run that succeeded)."""

from __future__ import annotations

import json
import socket

from densenet_trainer import departure
from densenet_trainer import env as trainer_env


def test_peers_are_every_other_task_of_tf_config():
    cluster = {"chief": ["c:1"], "worker": ["w0:2", "w1:3"]}
    environ = {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    }
    assert trainer_env.tf_config_peers(environ) == ["c:1", "w1:3"]
    chief = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})}
    assert trainer_env.tf_config_peers(chief) == ["w0:2", "w1:3"]
    assert trainer_env.tf_config_peers({}) == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_wait_ends_when_the_last_peer_is_gone():
    clock = FakeClock()
    gone_at = {"a:1": 0.3, "b:2": 1.0}

    def probe(peer: str) -> bool:
        return clock.now < gone_at[peer]

    assert departure.wait_for_exit(list(gone_at), 30, probe, clock, clock.sleep) == []
    assert 1.0 <= clock.now < 1.0 + 2 * departure.POLL_SECONDS


def test_a_peer_that_stays_is_given_up_on_after_the_bound():
    clock = FakeClock()
    stayed = departure.wait_for_exit(["a:1"], 5, lambda _p: True, clock, clock.sleep)
    assert stayed == ["a:1"]
    assert 5.0 <= clock.now < 5.0 + 2 * departure.POLL_SECONDS


def test_listening_tells_a_live_server_from_a_closed_port():
    server = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{server.getsockname()[1]}"
    assert departure.listening(address)
    server.close()
    assert not departure.listening(address)
