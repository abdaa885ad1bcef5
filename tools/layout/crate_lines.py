#!/usr/bin/env python3
"""Non-test Rust lines per workspace crate, for ARCHITECTURE.md's crate table.

A crate's lines are those of the `.rs` files under its `src/` (not its `tests/`, `benches/`
or nested crates), without blank lines, comments and `#[cfg(test)]` modules. Prints a
Markdown table (crate, folder, lines, share); `--check` fails when a crate holds more than a
quarter of all lines.

    python3 tools/layout/crate_lines.py [--check]
"""
import json
import pathlib
import subprocess
import sys


def code_lines(text: str) -> int:
    """Lines of code outside `#[cfg(test)]` items, comments and blank lines."""
    lines = text.splitlines()
    n, i, depth_skip = 0, 0, None
    depth = 0
    skip_next_item = False
    for line in lines:
        s = line.strip()
        if depth_skip is not None:
            depth += line.count("{") - line.count("}")
            if depth <= depth_skip:
                depth_skip = None
            continue
        if s == "#[cfg(test)]":
            skip_next_item = True
            continue
        if skip_next_item:
            skip_next_item = False
            if "{" in s:
                depth_skip = depth
                depth += line.count("{") - line.count("}")
                if depth <= depth_skip:
                    depth_skip = None
            continue
        depth += line.count("{") - line.count("}")
        if not s or s.startswith("//"):
            continue
        n += 1
    return n


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    root = pathlib.Path(meta["workspace_root"])
    rows = []
    for p in meta["packages"]:
        folder = pathlib.Path(p["manifest_path"]).parent
        src = folder / "src"
        if not src.is_dir():
            # A crate without src/ (the test package): its own .rs files, tests aside.
            continue
        total = sum(code_lines(f.read_text()) for f in src.rglob("*.rs"))
        rows.append((p["name"], str(folder.relative_to(root)) or ".", total))
    all_lines = sum(r[2] for r in rows)
    rows.sort(key=lambda r: -r[2])
    print("| crate | folder | lines | share |")
    print("|---|---|---:|---:|")
    for name, folder, n in rows:
        print(f"| `{name}` | `{folder}/` | {n:,} | {100 * n / all_lines:.1f} % |")
    print(f"| all | | {all_lines:,} | |")
    if "--check" in sys.argv:
        over = [r for r in rows if r[2] * 4 > all_lines]
        if over:
            print(f"more than a quarter of the lines: {over}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
