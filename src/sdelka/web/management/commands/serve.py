"""Run the web server and the Huey consumer together, as `make run` does; Ctrl-C stops both."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and the job consumer; stop both on Ctrl-C or when either exits."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, **options: Any) -> None:
        manage = [sys.executable, "-m", "sdelka"]
        address = f"{options['host']}:{options['port']}"
        children = [
            subprocess.Popen([*manage, "runserver", address, "--noreload"]),
            subprocess.Popen([*manage, "run_huey"]),
        ]
        self.stdout.write(self.style.SUCCESS(f"Sdelka is running on http://{address}/ — press Ctrl-C to stop."))
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            self.stop_children(children)

    def stop_children(self, children: list[subprocess.Popen[bytes]]) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Stopped.")
