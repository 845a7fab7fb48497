"""Run directories (the on-disk contract), the state of a run read from one, the per-video predictions files of
its tests (``harness.results.predictions``), and the results store built from them."""
