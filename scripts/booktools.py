"""Book tooling used by the Makefile (not part of the companion package).

python scripts/booktools.py stored-config _config.yml OUT.yml   # config that builds from stored outputs
python scripts/booktools.py timings _build/.jupyter_cache       # print each notebook's execution time
python scripts/booktools.py execute-cache CACHE NB.ipynb ...    # fill the book's cache, 2 notebooks at a time
python scripts/booktools.py compare-caches CACHE_A CACHE_B      # same outputs in two executions of the book?
python scripts/booktools.py execute NB.ipynb ... --timings CSV  # re-execute in place, record times
python scripts/booktools.py colab-cells NB.ipynb ...            # write each chapter's Colab install cell
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The book's Sphinx extensions; kernel_wakeups.py there fixes the executor's lost wake-ups (and detects them).
EXTENSIONS = ROOT / "book" / "_ext"
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


def kernel_wakeups():
    """book/_ext/kernel_wakeups.py, imported: ``install()`` applies the fix and the detector in this process."""
    if str(EXTENSIONS) not in sys.path:
        sys.path.insert(0, str(EXTENSIONS))
    import kernel_wakeups as module

    return module


#: nbconvert, run with the lost wake-up fix applied in its process (it executes with nbclient, like the book).
NBCONVERT_WITH_FIX = (
    f"import sys; sys.path.insert(0, {str(EXTENSIONS)!r}); import kernel_wakeups; kernel_wakeups.install(); "
    "from nbconvert.nbconvertapp import main; sys.exit(main())"
)


def recorded_seconds(timings_csv: Path = ROOT / "book" / "timings.csv") -> dict[str, float]:
    """Each chapter's last measured execution time (``make notebooks``), used to start the longest first."""
    if not timings_csv.exists():
        return {}
    with open(timings_csv, newline="") as handle:
        return {row.get("chapter", ""): float(row.get("seconds") or 0) for row in csv.DictReader(handle)}


def _execute_cached(job: tuple[int, str, str, int, bool]) -> tuple[int, str, float, dict]:
    """In a worker process: execute one project notebook with jupyter-cache's own worker, as myst-nb would."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData

    pk, uri, cache_path, timeout, allow_errors = job
    cache = get_cache(cache_path)
    start = time.perf_counter()
    status, _ = ExecutionWorkerLocalMProc()(ProcessData(pk, uri, cache, timeout, allow_errors))
    seconds = time.perf_counter() - start
    wakeups = kernel_wakeups()
    return status, uri, seconds, wakeups.write_report(Path(uri).stem, wakeups.take_watches())


#: Notebooks that run alone on every core before the others run two at a time on one core each: they use both
#: cores and would take over 1.5x longer on one (measured on 2 cores, bare nbclient, 2026-12-05: chapter 4 takes 41-43 s
#: with two threads and 62.5 s with one; the others take at most 1.08x longer on one thread, chapter 6 none).
ALL_CORES = ("04_pde_pixel_data",)


def _execute_pool(todo: list, jobs: int, threads: int, cache, settings: tuple[str, int, bool]) -> tuple[list, list]:
    """Execute ``todo`` (cache records) ``jobs`` at a time, each kernel on ``threads`` threads (unless
    ``OMP_NUM_THREADS`` is set); return the names that failed and those with lost wake-ups."""
    wakeups = kernel_wakeups()
    failed, stalled = [], []
    cache_path, timeout, allow_errors = settings
    threads = os.environ.get("OMP_NUM_THREADS", str(threads))
    print(f"executing {len(todo)} notebook(s), {jobs} at a time, {threads} thread(s) each", flush=True)
    work = [(record.pk, record.uri, str(Path(cache_path).absolute()), timeout, allow_errors) for record in todo]
    # Kernels inherit the workers' environment; the workers apply the fix themselves (initializer).
    environment = {**os.environ}
    os.environ["OMP_NUM_THREADS"] = threads
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, initializer=wakeups.install) as pool:
            futures = [pool.submit(_execute_cached, job) for job in work]
            for future in concurrent.futures.as_completed(futures):
                status, uri, seconds, report = future.result()
                name = Path(uri).name
                print(
                    f"  {seconds:7.1f} s  {name}  (longest wait with the kernel idle {report['longest_wait']:.2f} s, "
                    f"{report['messages']} messages)",
                    flush=True,
                )
                if status != 0:
                    failed.append(name)
                    print(cache.get_project_record(uri).traceback or f"{name}: execution failed", file=sys.stderr)
                if report["stalls"]:
                    stalled.append(name)
                    print(f"{name}: lost wake-ups: {report['stalls']}", file=sys.stderr)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    return failed, stalled


def execute_cache(cache_path: str, notebooks: list[str], jobs: int, config_path: Path = ROOT / "_config.yml") -> None:
    """Execute the notebooks the book's jupyter-cache lacks, ``jobs`` at a time, before ``jupyter-book build``.

    Each notebook runs through jupyter-cache's worker (nbclient, in the notebook's folder, with the timeout and
    allow_errors of ``_config.yml``) and is stored in the cache that myst-nb reads, so the build then renders
    every chapter from the cache ("Using cached notebook") and the outputs are those a serial build executes.
    The notebooks of ``ALL_CORES`` run first, alone on every core; then the others ``jobs`` at a time with the
    cores shared (two kernels with torch's default pool, one thread per core, would oversubscribe the cores, and
    OpenMP threads that wait by spinning slow each other down far more than twice), the longest first
    (``book/timings.csv``) so that the workers finish together.
    """
    from jupyter_cache import get_cache

    options = yaml.safe_load(Path(config_path).read_text()).get("execute", {})
    settings = (cache_path, int(options.get("timeout", CELL_TIMEOUT)), bool(options.get("allow_errors", False)))
    cache = get_cache(cache_path)
    records = [cache.add_nb_to_project(str(Path(nb).absolute())) for nb in notebooks]
    todo = cache.list_unexecuted(filter_pks=[record.pk for record in records])
    if not todo:
        print(f"every notebook is in the cache ({cache_path})")
        return
    expected = recorded_seconds()
    todo.sort(key=lambda record: -expected.get(Path(record.uri).stem, 0.0))
    alone = [record for record in todo if Path(record.uri).stem in ALL_CORES and jobs > 1]
    shared = [record for record in todo if record not in alone]
    cores = os.cpu_count() or 1
    print(f"into {cache_path} ({machine()})", flush=True)
    failed, stalled, start = [], [], time.perf_counter()
    if alone:
        failed, stalled = _execute_pool(alone, 1, cores, cache, settings)
    if shared:
        jobs = max(1, min(jobs, len(shared)))
        more_failed, more_stalled = _execute_pool(shared, jobs, max(1, cores // jobs), cache, settings)
        failed, stalled = failed + more_failed, stalled + more_stalled
    print(f"executed in {time.perf_counter() - start:.1f} s", flush=True)
    if failed:
        raise SystemExit(f"execution failed: {', '.join(failed)}")
    if stalled:
        raise SystemExit(
            f"the executor lost a wake-up in {', '.join(stalled)} (book/_ext/kernel_wakeups.py): the outputs are "
            "complete and cached, so `make book` again builds the book, but the fix no longer covers every path."
        )


_MODEL_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")  # widget model ids (uuid4 hex)
_SLIDER_ID = re.compile(r"(?<=slider_)[0-9a-f]{12}(?![0-9a-f])")  # companion.plotting.slider_figures' element ids
_DURATION = re.compile(r" *\b\d+(\.\d+)? (CPU-)?s\b")  # "trained in 2.1 s", "8 CPU-s": measured, never equal


def comparable_outputs(notebook: nbformat.NotebookNode) -> str:
    """A notebook's outputs, execution counts and widget states, with what differs between any two runs made equal.

    Random names are renamed canonically (widget models by a walk of the widget graph from the models the outputs
    show, sliders in order of appearance), consecutive stream outputs are merged (the kernel's flushes split them
    by timing; the book merges them too, ``nb_merge_streams``) and printed durations are masked.
    """
    cells = []
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        outputs = []
        for output in map(dict, cell.get("outputs", [])):
            if output.get("output_type") == "stream":
                output["text"] = _DURATION.sub(" <duration>", output["text"])
                if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1]["name"] == output["name"]:
                    outputs[-1]["text"] += output["text"]
                    continue
            outputs.append(output)
        cells.append({"execution_count": cell.get("execution_count"), "outputs": outputs})
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    names: dict[str, str] = {}
    queue = _MODEL_ID.findall(json.dumps(cells))
    while queue:
        model = queue.pop(0)
        if model not in names:
            names[model] = f"model{len(names)}"
            queue += _MODEL_ID.findall(json.dumps(state.get(model, {}).get("state", {}), sort_keys=True))
    sliders: dict[str, str] = {}
    text = _MODEL_ID.sub(lambda m: names.get(m.group(0), "unreached"), json.dumps({"cells": cells, "widgets": state}))
    text = _SLIDER_ID.sub(lambda m: sliders.setdefault(m.group(0), f"slider{len(sliders)}"), text)
    return json.dumps(json.loads(text), sort_keys=True)


def compare_caches(first: str, second: str) -> None:
    """Check that two jupyter-caches (e.g. a serial and a parallel ``make book``) hold the same outputs."""
    from jupyter_cache import get_cache

    def load(path: str) -> dict[str, str]:
        cache = get_cache(path)
        return {
            Path(r.uri).name: comparable_outputs(cache.get_cache_bundle(r.pk).nb) for r in cache.list_cache_records()
        }

    a, b = load(first), load(second)
    different = sorted(name for name in set(a) | set(b) if a.get(name) != b.get(name))
    for name in sorted(set(a) | set(b)):
        print(f"  {'identical' if name not in different else 'DIFFERENT'}  {name}")
    if different:
        raise SystemExit(f"outputs differ (or a notebook is missing) in {', '.join(different)}")


def execute(notebooks: list[str], timings_csv: str | None) -> None:
    rows = []
    for nb in notebooks:
        start = time.perf_counter()
        cmd = [
            sys.executable,
            "-c",
            NBCONVERT_WITH_FIX,
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
    p = sub.add_parser("compare-caches")
    p.add_argument("first")
    p.add_argument("second")
    p = sub.add_parser("execute-cache")
    p.add_argument("cache")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--jobs", type=int, default=2, help="notebooks executed at the same time (default 2)")
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
    elif args.command == "compare-caches":
        compare_caches(args.first, args.second)
    elif args.command == "execute-cache":
        execute_cache(args.cache, args.notebooks, args.jobs)
    elif args.command == "colab-cells":
        colab_cells(args.notebooks)
    else:
        execute(args.notebooks, args.timings)


if __name__ == "__main__":
    main()
