"""Book tooling used by the Makefile (not part of the companion package).

python scripts/booktools.py stored-config _config.yml OUT.yml   # config that builds from stored outputs
python scripts/booktools.py timings _build/.jupyter_cache       # print each notebook's execution time
python scripts/booktools.py execute NB.ipynb ... --timings CSV  # re-execute in place, record times
python scripts/booktools.py colab-cells NB.ipynb ...            # write each chapter's Colab install cell
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Tag of the first code cell of every chapter: it installs companion in Colab and does nothing elsewhere.
COLAB_TAG = "colab-install"
#: Per-cell time limit (seconds) of every notebook execution path: `make book` (_config.yml), nbval (Makefile)
#: and `make notebooks` (below). A stalled cell then fails instead of waiting.
CELL_TIMEOUT = 300


def machine() -> str:
    """A one-line description of this machine: CPU model, cores visible, and torch threads."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def stored_config(source: str, target: str) -> None:
    config = yaml.safe_load(Path(source).read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    # Paths of local extensions are read relative to the config file: make them absolute.
    base = Path(source).resolve().parent
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in extensions.items():
        extensions[name] = str((base / folder).resolve())
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"wrote {target} (execute_notebooks: off)")


def colab_install_source(config_path: Path = ROOT / "_config.yml") -> str:
    """The source of the Colab install cell, built from the repository setting of ``_config.yml`` (one place)."""
    repository = yaml.safe_load(Path(config_path).read_text())["repository"]
    url, branch = repository["url"].rstrip("/"), repository.get("branch", "main")
    return (
        "# In Google Colab only: install the companion package first. Anywhere else this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    PACKAGE = "companion @ git+{url}@{branch}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE], check=True)'
    )


def colab_cells(notebooks: list[str]) -> None:
    """Insert (after the title cell) or refresh the Colab install cell of each notebook; hidden from the book."""
    source = colab_install_source()
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if COLAB_TAG in c.get("metadata", {}).get("tags", [])]
        if tagged:
            cell = tagged[0]
            if cell.source == source:
                continue
            cell.source = source
        else:
            cell = nbformat.v4.new_code_cell(source)
            nb.cells.insert(1, cell)
        cell.metadata["tags"] = [COLAB_TAG, "remove-cell"]
        nbformat.write(nb, path)
        print(f"{path}: Colab install cell written (re-execute the notebook: make notebooks)")


def timings(cache_path: str) -> None:
    from jupyter_cache import get_cache

    records = get_cache(cache_path).list_cache_records()
    if not records:
        raise SystemExit(f"no executed notebooks recorded in {cache_path}")
    print(f"\nExecution time of each notebook ({machine()}):")
    for record in sorted(records, key=lambda r: r.uri):
        seconds = record.data.get("execution_seconds")
        shown = f"{seconds:7.1f} s" if seconds is not None else "      ?"
        print(f"  {shown}  {Path(record.uri).name}")


def execute(notebooks: list[str], timings_csv: str | None) -> None:
    rows = []
    for nb in notebooks:
        start = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--inplace",
            f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}",
            "--ExecutePreprocessor.startup_timeout=60",
            nb,
        ]
        subprocess.run(cmd, check=True)
        seconds = time.perf_counter() - start
        print(f"{nb}: {seconds:.1f} s")
        rows.append((Path(nb).stem, f"{seconds:.0f}"))
    if timings_csv:
        # Update the rows of the notebooks just executed; keep the others.
        table: dict[str, list[str]] = {}
        if Path(timings_csv).exists():
            with open(timings_csv, newline="") as handle:
                table = {row[0]: row for row in list(csv.reader(handle))[1:]}
        for name, seconds in rows:
            table[name] = [name, seconds, machine()]
        with open(timings_csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["chapter", "seconds", "machine"])
            writer.writerows(table[name] for name in sorted(table))
        print(f"wrote {timings_csv}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stored-config")
    p.add_argument("source")
    p.add_argument("target")
    p = sub.add_parser("timings")
    p.add_argument("cache")
    p = sub.add_parser("colab-cells")
    p.add_argument("notebooks", nargs="+")
    p = sub.add_parser("execute")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--timings")
    args = parser.parse_args()
    if args.command == "stored-config":
        stored_config(args.source, args.target)
    elif args.command == "timings":
        timings(args.cache)
    elif args.command == "colab-cells":
        colab_cells(args.notebooks)
    else:
        execute(args.notebooks, args.timings)


if __name__ == "__main__":
    main()
