"""The authors' published set-ups re-implemented, each beside companion's network and recipe on the same data.

Each module holds one experiment: the authors' data generation, network, recipe and metric written from
their description and code (their code is not copied), and a ``run(device, seeds, *, quick, log)`` that
trains both sides seed by seed and returns :class:`~benchmarks.authors.common.Comparison` rows. Where both
networks of a row can be trained by both recipes (the SIR map, the Swiss roll), ``run`` trains all four pairs and
the row carries the time to accuracy on one network (:mod:`~benchmarks.authors.time_to_accuracy`). The runner is
``benchmarks/authors_run.py``; the book page is ``book/authors_benchmarks.md``.
"""

from __future__ import annotations

from . import pixels, robustness, sir, step_costs, swiss_roll

#: Experiment name -> run function, in the order of the table.
EXPERIMENTS = {"sir": sir.run, "swiss_roll": swiss_roll.run, "pixels": pixels.run, "robustness": robustness.run}

#: Further measurements that explain the table (each returns a Markdown fragment).
NOTES = {"step_costs": ("Where the training time goes: one optimiser step", step_costs.run)}
