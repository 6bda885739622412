"""lit configuration of the golden IR tests: each `.ir` (printed IR) or `.dad` file in this
folder carries its own `// RUN:` (or `# RUN:`) line, typically `dadc opt -p PASSES %s |
filecheck %s`, and the `CHECK` lines the output must match (LLVM FileCheck semantics, the
`filecheck` package). Run them all with `lit tests/ir` or through pytest
(tests/test_ir_golden.py, one test per file)."""
import os
import shutil
import sys

import lit.formats

config.name = "dad-ir"  # noqa: F821 - lit provides `config`
config.test_format = lit.formats.ShTest()  # noqa: F821
config.suffixes = [".ir", ".dad"]  # noqa: F821
config.test_source_root = os.path.dirname(__file__)  # noqa: F821
config.excludes = ["lit.cfg.py"]  # noqa: F821
# the dadc and filecheck of the Python running lit (its virtual environment's)
bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")  # noqa: F821
for var in ("DAD_CACHE_DIR", "DAD_NO_CACHE", "DAD_VERIFY", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]  # noqa: F821
for tool in ("dadc", "filecheck"):
    if shutil.which(tool, path=config.environment["PATH"]) is None:  # noqa: F821
        lit_config.fatal(f"{tool} not found next to {sys.executable}")  # noqa: F821
