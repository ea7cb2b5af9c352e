"""`make run` end to end: migrate a fresh data dir, start `sdelka serve`, fetch a page, Ctrl-C stops both."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def test_serve_starts_web_and_jobs_and_stops_both_on_ctrl_c(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SDELKA_DEV="1", SDELKA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="sdelka.settings")
    manage = [sys.executable, "-m", "sdelka"]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/login/") == 200
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 2, "web server and job consumer"
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output = server.communicate(timeout=20)[0].decode()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert server.returncode == 0
    assert "Stopped." in output
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}"), f"child {pid} outlived Ctrl-C"
