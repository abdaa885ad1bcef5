"""Static checks of the deploy files that CI cannot start (no cluster, no Slurm, no systemd as
PID 1; the compose stack does start, in tests/compose.rs, with podman):

- Kubernetes manifests against the Kubernetes API schemas (`kubernetes-validate`, from PyPI);
- systemd units with `systemd-analyze verify` (a warning fails too: it only warns about a
  misspelt key or a bad value);
- the Slurm batch script with `bash -n`;
- every nlebench command line in these files (Kubernetes and compose `args`/`command`, systemd
  `ExecStart`, the Slurm `exec`) against the binary's own argument parser.

    python3 deploy/check.py [--nlebench target/debug/nlebench]
"""

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
failures: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(f"{what}\n{detail}".strip())
        if detail:
            print(detail)


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, arguments after `nlebench`) of every command line in the deploy files."""
    lines = []
    for doc in yaml.safe_load_all((DEPLOY / "kubernetes/workers.yaml").read_text()):
        for c in doc["spec"]["template"]["spec"]["containers"]:
            lines.append((f"kubernetes {doc['metadata']['name']}", c.get("args", [])))
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if service.get("image") == "nlebench" and "command" in service:
            lines.append((f"compose {name}", service["command"]))
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                lines.append((f"systemd {unit.name}", shlex.split(line)[1:]))
    for line in (DEPLOY / "slurm/nlebench-worker.sbatch").read_text().splitlines():
        m = re.match(r"\s*exec nlebench (.*)", line)
        if m:
            lines.append(("slurm", shlex.split(m.group(1))))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nlebench", default="target/debug/nlebench")
    a = ap.parse_args()
    nlebench = str(Path(a.nlebench).resolve())

    r = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", str(DEPLOY / "kubernetes/workers.yaml")],
        capture_output=True, text=True)
    check(r.returncode == 0, "kubernetes/workers.yaml against the Kubernetes API schemas", r.stdout + r.stderr)

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    built = [s for s in compose["services"].values() if "build" in s]
    check(len(built) == 1
          and (DEPLOY / built[0]["build"]["context"]).resolve() == DEPLOY.parent
          and (DEPLOY.parent / built[0]["build"]["dockerfile"]).is_file(),
          "docker-compose.yml builds the image from the repository with deploy/Dockerfile")

    with tempfile.TemporaryDirectory() as tmp:
        units = []
        for unit in sorted((DEPLOY / "systemd").glob("*.service")):
            text = unit.read_text().replace("/usr/local/bin/nlebench", nlebench)
            # A template unit is verified as one instance of it.
            name = unit.name.replace("@.service", "@1.service")
            (Path(tmp) / name).write_text(text)
            units.append(str(Path(tmp) / name))
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
            out = (r.stdout + r.stderr).strip()
            check(r.returncode == 0 and not out, "systemd units (systemd-analyze verify)", out)
        else:
            check(False, "systemd units: systemd-analyze is not installed (Debian: systemd)")

    r = subprocess.run(["bash", "-n", str(DEPLOY / "slurm/nlebench-worker.sbatch")], capture_output=True, text=True)
    check(r.returncode == 0, "slurm/nlebench-worker.sbatch (bash -n)", r.stderr)

    lines = command_lines()
    check(len(lines) >= 6, f"found {len(lines)} nlebench command lines in the deploy files")
    for where, args in lines:
        # The parser validates the subcommand and each flag before it prints the help.
        r = subprocess.run([nlebench, *args, "--help"], capture_output=True, text=True)
        check(r.returncode == 0, f"{where}: nlebench {' '.join(args)}", r.stderr)

    if failures:
        print(f"\n{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("\nall deploy checks passed")


if __name__ == "__main__":
    main()
