import importlib


def test_subpackages_import_under_dad():
    for sub in ["lang", "frontend", "ad", "lowering", "runtime"]:
        mod = importlib.import_module(f"dad.{sub}")
        assert mod.__name__ == f"dad.{sub}"
