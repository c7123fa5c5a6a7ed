"""A real TensorBoard server for the tests, started and stopped by its own process id."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

TENSORBOARD = Path(sys.executable).parent / "tensorboard"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log_file: Path, *options: str) -> Iterator[str]:
    """Start `tensorboard --logdir LOGDIR OPTIONS`, wait until it answers, yield its URL; always
    stop it, by its own process id."""
    port = free_port()
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [str(TENSORBOARD), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
             *options],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"tensorboard exited with {process.returncode}:\n{log_file.read_text()}")
            try:
                urllib.request.urlopen(f"{url}/data/runs", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"tensorboard did not answer in {START_TIMEOUT_S} s:\n"
                                f"{log_file.read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # by its own process id; it is our child
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get_json(url: str, path: str, **params: str):
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=30) as response:
        return json.load(response)


def post_json(url: str, path: str, body: dict):
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)
