"""Replace (or append) one `## …` section of BENCHMARKS.md; shared by the benchmark scripts."""

import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = "# Benchmarks\n\nEvery number here comes from a command in the repository, run on the machine named with it.\n\n"


def write_section(title: str, section: str) -> None:
    """`section` starts with `## {title}`; it replaces the section of that title."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else HEADER
    start = text.find(f"## {title}")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def cpu_model() -> str:
    """The CPU model (/proc/cpuinfo), which every figure names: results differ by machine."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
