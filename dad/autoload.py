"""`import dad.autoload` turns on the import hook: `import NAME` then finds `NAME.dad` (compiled
through the compile cache) or a `NAME.so` built by `dadc build` on `sys.path`. See
`dad.runtime.autoload`; `dad.install_import_hook()` does the same."""
from .runtime.autoload import install as _install

_install()
