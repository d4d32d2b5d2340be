"""Joining a Ray cluster fails in seconds, with one line, when nothing listens at the address."""

from __future__ import annotations

import socket
import time

import pytest

from faceward.errors import ConfigError
from faceward.index.milvus_server import free_ports
from faceward.vision.cluster import RayAnalyzer, check_reachable
from faceward.vision.engine import EngineOptions


def test_an_address_nobody_listens_on_is_refused_at_once() -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        RayAnalyzer(f"127.0.0.1:{port}", EngineOptions()).__enter__()
    assert time.monotonic() - started < 30  # ray.init alone retried for minutes
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message


def test_a_head_that_never_answers_times_out_within_the_bound() -> None:
    # A listening socket whose backlog is full: the kernel drops further SYNs, as a firewalled host does.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers: list[socket.socket] = []
        while len(fillers) < 64:  # connect until the queue is full and a connect hangs
            try:
                fillers.append(socket.create_connection(server.getsockname(), timeout=0.5))
            except TimeoutError:
                break
        else:
            pytest.fail("the listen queue never filled")
        started = time.monotonic()
        try:
            with pytest.raises(ConfigError, match="timed out"):
                check_reachable("ray://127.0.0.1:%d" % server.getsockname()[1], timeout_s=1.0)
        finally:
            for filler in fillers:
                filler.close()
        assert time.monotonic() - started < 5


def test_addresses_without_a_port_are_left_to_ray() -> None:
    check_reachable("auto")  # no probe, no error
