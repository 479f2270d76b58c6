"""rasp2d: a compiler from .rasp2d programs to exact transformers with 2-dimensional heads.

The repository root is the package; see DESIGN in the README for the pipeline
(lang -> compiler -> backends) and the WASM machine in interpreter_spec.
"""

__version__ = "0.1.0"
