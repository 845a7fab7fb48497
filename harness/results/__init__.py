"""Run directories (the on-disk contract), the state of a run read from one, and the results store built from them."""
