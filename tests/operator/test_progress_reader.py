"""The progress reader's limits, against real HTTP servers on loopback: a page too large or a
server that drips bytes past the deadline is a failed read, not a stalled operator thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from densenet_operator import progress

PAGE = b"# TYPE densenet_global_step gauge\ndensenet_global_step 7.0\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.path == "/big":
            for _ in range(64):
                self.wfile.write(b"#" * 16 * 1024 + b"\n")
        elif self.path == "/drip":
            for _ in range(40):  # 4 s of one byte every 100 ms, each within the socket timeout
                self.wfile.write(b"#")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.wfile.write(PAGE)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_normal_page_is_read_and_parsed(server):
    text = progress.fetch(f"{server}/metrics")
    assert text is not None and progress.parse(text) == {"densenet_global_step": 7.0}


def test_a_page_over_the_size_cap_is_a_failed_read(server):
    assert progress.fetch(f"{server}/big", max_bytes=256 * 1024) is None
    assert progress.fetch(f"{server}/big", max_bytes=2 * 1024 * 1024) is not None


def test_a_server_dripping_bytes_is_cut_at_the_deadline(server):
    started = time.monotonic()
    assert progress.fetch(f"{server}/drip", deadline=1.0) is None
    assert time.monotonic() - started < 2.5


def test_step_time_moves_only_with_the_step():
    from densenet_operator.progress import step_time

    t0, t1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC), datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    first = step_time({}, {"step": 10}, t0)
    assert first == "2026-12-01T10:00:00Z"
    assert step_time({"step": 10, "stepTime": first}, {"step": 10}, t1) == first
    assert step_time({"step": 10, "stepTime": first}, {"step": 11}, t1) == "2026-12-01T10:05:00Z"
    assert step_time({"step": 10, "stepTime": first}, {}, t1) == first  # no step read
    assert step_time({}, {}, t1) is None


def test_a_restarts_record_closes_at_the_new_attempts_first_step():
    from densenet_contract import metrics
    from densenet_operator.progress import recovered

    restarted = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    record = {"restartedAt": "2026-12-01T10:00:00Z", "stepAtRestart": 57, "recoveries": 1,
              "stepsLost": 3, "secondsLost": 40.0}  # fmt: skip
    first_step = (restarted.timestamp() + 31.5, {"step": 41, "resumedStep": 40})
    values = {metrics.FIRST_STEP_TIME: first_step[0]}
    goodput, seconds, lost = recovered(record, values, first_step[1])
    assert (seconds, lost) == (31.5, 17)
    assert goodput == {"recoveries": 2, "stepsLost": 20, "secondsLost": 71.5,
                       "lastRecoverySeconds": 31.5}  # fmt: skip
    # Nothing to close: no open record, no first step yet, or the old attempt's chief.
    assert recovered({}, values, first_step[1]) is None
    assert recovered(record, {}, {"step": 57}) is None
    before = {metrics.FIRST_STEP_TIME: restarted.timestamp() - 600}
    assert recovered(record, before, first_step[1]) is None


def test_the_checkpoint_state_reaches_the_status():
    from densenet_contract import metrics
    from densenet_operator.progress import progress

    values = {
        metrics.GLOBAL_STEP: 45.0,
        metrics.RESUMED_STEP: 40.0,
        metrics.CHECKPOINT_STEP: 40.0,
        metrics.CHECKPOINT_TIME: datetime(2026, 12, 1, 9, 59, 30, tzinfo=UTC).timestamp(),
    }
    out = progress(values, {}, None, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert (out["step"], out["resumedStep"], out["checkpointStep"]) == (45, 40, 40)
    assert out["checkpointTime"] == "2026-12-01T09:59:30Z"
