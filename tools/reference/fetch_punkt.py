#!/usr/bin/env python3
"""Install NLTK's Punkt English model (`tokenizers/punkt_tab/english`) without GitHub access.

NLTK downloads its data from GitHub, which is not reachable everywhere. The same files are
vendored in the `llama-index-core` wheel on PyPI (llama_index/core/_static/nltk_cache). This
script downloads that wheel with pip (no dependencies, nothing installed) and copies the
Punkt tables (Apache-2.0, the NLTK Project) into an NLTK data directory.

Usage: python3 tools/reference/fetch_punkt.py [--out ~/nltk_data] [--version 0.14.25]
Then `nlebench` (and NLTK) find the model there, or in $NLTK_DATA.
"""

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PREFIX = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path.home() / "nltk_data")
    ap.add_argument("--version", default="0.14.25")
    args = ap.parse_args()
    target = args.out / "tokenizers/punkt_tab"
    if (target / "english/ortho_context.tab").is_file():
        print(f"{target}/english is already there")
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
                        f"llama-index-core=={args.version}"], check=True)
        wheel = next(Path(tmp).glob("llama_index_core-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if n.startswith(PREFIX) and not n.endswith("/")]
            for n in names:
                out = target / n[len(PREFIX):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(n))
    print(f"installed {len(names)} Punkt files into {target}")


if __name__ == "__main__":
    main()
