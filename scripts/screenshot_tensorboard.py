"""Screenshot TensorBoard showing a real sweep, with headless Chromium: the README's picture.

    python scripts/screenshot_tensorboard.py [--out docs/tensorboard.png] [--dashboard scalars]
    python scripts/screenshot_tensorboard.py --dashboard custom_scalars \
        --out docs/seed-groups-tensorboard.png --summary-png docs/seed-groups.png

Runs a small learning-rate sweep of the scalar example (for custom_scalars: of the regressor over
five seeds, whose groups' margin charts it shows) in a temporary folder, starts
`tensorboard --logdir <sweep folder>` on a free local port, waits until it answers, saves a
screenshot of the dashboard, and stops the server. Needs a Chromium binary (Debian:
`apt-get install chromium`; or pass --browser); the test suite does not.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["-m", "trainer.steps=40", "optim.lr=0.02,0.05,0.1,0.2,0.4"]
# Seed groups (docs/guide/sweeps.md): two learning rates, five seeds each, with validation.
SEED_SWEEP = ["-m", "model=regressor", "optim.lr=0.02,0.1", "seed=0,1,2,3,4", "trainer.steps=60",
              "data.val_fraction=0.2", "trainer.val_every_steps=5"]
# The scalars dashboard, loss curves only, all runs; smoothing off so curves are the raw values.
DASHBOARDS = {
    "scalars": "#scalars&tagFilter=loss%2Ftrain&_smoothingWeight=0",
    "timeseries": "#timeseries&tagFilter=loss%2Ftrain",
    "hparams": "#hparams",
    "custom_scalars": "#custom_scalars",  # the seed groups' margin charts
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tensorboard exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/data/runs", timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"tensorboard did not answer within {timeout_s} s")


def screenshot(browser: str, url: str, out: Path, profile: Path, width: int, height: int) -> None:
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},{height}",
            "--hide-scrollbars", "--virtual-time-budget=15000", f"--screenshot={out}", url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "tensorboard.png")
    parser.add_argument("--dashboard", choices=sorted(DASHBOARDS), default="scalars")
    parser.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    parser.add_argument("--size", default="1400,900", help="window width,height in pixels")
    parser.add_argument("--summary-png", type=Path, default=None,
                        help="also copy the sweep's summary.png here")
    args = parser.parse_args()
    if not args.browser:
        print("error: no chromium found; apt-get install chromium, or pass --browser", file=sys.stderr)
        return 2
    width, height = map(int, args.size.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sweep = SEED_SWEEP if args.dashboard == "custom_scalars" else SWEEP
        subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), *sweep], cwd=work,
                       check=True, capture_output=True)
        (sweep_dir,) = (work / "outputs" / "multirun").iterdir()
        if args.summary_png is not None:
            shutil.copyfile(sweep_dir / "summary.png", args.summary_png)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        tensorboard = Path(sys.executable).parent / "tensorboard"
        server = subprocess.Popen(
            [str(tensorboard), "--logdir", str(sweep_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(url, server)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            screenshot(args.browser, f"{url}/{DASHBOARDS[args.dashboard]}", args.out.resolve(),
                       work / "chromium-profile", width, height)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
