"""Run directories (the on-disk contract) and the results store built from them."""
