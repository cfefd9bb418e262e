"""A real PostgreSQL server for the tests: initdb in a temporary directory, pg_ctl on a free
port of 127.0.0.1, run as the `postgres` user when the tests run as root."""

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.integration.cluster import free_port


def server_bin() -> Path | None:
    """The newest installed server's bin directory (Debian's `postgresql` package)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parent.parent.name))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    directory: Path
    port: int = 0
    user: str = "shopstream"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        bin_dir = server_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run(bin_dir / "initdb", "-D", data, "-U", self.user, "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        self._run(bin_dir / "pg_ctl", "-D", data, "-l", self.directory / "server.log", "-w",
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=100", "start")
        return self.dsn

    def stop(self) -> None:
        bin_dir = server_bin()
        if bin_dir is not None and (self.directory / "data" / "postmaster.pid").exists():
            self._run(bin_dir / "pg_ctl", "-D", self.directory / "data", "-m", "fast", "-w",
                      "stop")

    def _run(self, *args: object) -> None:
        command = [str(arg) for arg in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                              cwd=self.directory)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
