"""Fuzzing dad: random well-typed `.dad` programs (`gen`), checked by independent oracles
(`oracles`: forward versus reverse mode by the dot-product test, both versus finite
differences, nested modes versus each other, checkpointed versus plain reverse mode, every
derived function's primal versus the plain call), failures minimised (`minimize`), run in
restartable worker processes (`runner`, `python -m tests.fuzz --help`)."""
