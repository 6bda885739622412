"""ADBench (github.com/microsoft/ADBench) in dad: GMM, bundle adjustment and LSTM.

`io` reads ADBench's input files (and generates seeded ones), `reference` holds independent
NumPy objectives and the sparse BA Jacobian assembly, `peers` the JAX / PyTorch / C
baselines, `harness` the benchmark (`python -m benchmarks.adbench`, or `main()`).
"""


def main(argv=None) -> int:
    from .harness import main as _main
    return _main(argv)
