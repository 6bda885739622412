"""Benchmarks of dad. Each module here with a `main()` is one benchmark; run one with
`python -m benchmarks.NAME` and all with `python -m benchmarks`. Results go to
`benchmarks/results/NAME.md` and `NAME.json`, written by the benchmark itself."""
