"""The server job API under MindSpore Federated's own test harness pattern (spec §14,
`tests/ut/python/tests/common.py`): jobs run in forked `multiprocessing.Process`es, `after_started` reports through
a Pipe, start errors come back pickled through the same Pipe, and processes are stopped by a signal. The harness is
`tests/e2e/job_harness.py`; the scheduler's bullets (`/state` with servers joining and leaving, invalid manage
addresses, ...) are in `test_job_api_scheduler.py`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from tests.e2e.job_harness import (
    Jobs,
    assert_features,
    feature_map,
    features,
    initial_features,
    ports,
    start_fl_job,
    until_ok,
    write_yaml,
)

from mindfed import FeatureMap

pytestmark = pytest.mark.e2e


def test_second_server_adopts_the_first_servers_model(redis_address: str, fl_name: str, tmp_path: Path,
                                                      jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address, start_fl_job_threshold=2)
    server_ports = ports(2)

    # Execute: the second server is started with other initial values
    for i, port in enumerate(server_ports):
        jobs.server(job_yaml, port, feature_map(i), ckpt=f"ckpt{i}")
    job = until_ok(lambda: start_fl_job(server_ports[1], fl_name, "dev"))

    # Assert
    assert job.iteration == 1
    assert_features(initial_features(0), features(job))


def test_sigint_stops_a_server_cleanly_too(redis_address: str, fl_name: str, tmp_path: Path, jobs: Jobs) -> None:
    # Prepare
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    (port,) = ports(1)
    server = jobs.server(job_yaml, port, feature_map(0))
    assert server.pid is not None

    # Execute
    os.kill(server.pid, signal.SIGINT)
    server.join(15)

    # Assert
    assert server.exitcode == 0


def test_a_server_with_another_model_layout_is_refused(redis_address: str, fl_name: str, tmp_path: Path,
                                                        jobs: Jobs) -> None:
    # Prepare: the first server declares the job's model layout
    job_yaml = write_yaml(tmp_path, fl_name, redis_address)
    first, second, third = ports(3)
    jobs.server(job_yaml, first, feature_map(0), ckpt="ckpt0")
    flipped = feature_map(0)
    flipped.feature_map()["feature_conv2"].require_aggr = True
    smaller = FeatureMap()
    smaller.add_feature("feature_conv", np.zeros((2, 3), np.float32))
    smaller.add_feature("feature_bn", np.zeros(1, np.float32))

    # Execute / Assert: MindSpore's messages (spec §13) reach the harness as RuntimeError
    with pytest.raises(RuntimeError, match="The feature require_aggr 1 of local != that 0"):
        jobs.server(job_yaml, second, flipped, ckpt="ckpt1")
    with pytest.raises(RuntimeError, match="The number 2 of local features != the number 4 declared"):
        jobs.server(job_yaml, third, smaller, ckpt="ckpt2")
