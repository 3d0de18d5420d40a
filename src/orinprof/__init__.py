"""orinprof: what INT8 buys a transformer, layer by layer, on Jetson AGX Orin and elsewhere.

Pipeline: models → export → classify → quantize → (backends) measure → attribute → compare →
cards → report.  Stages pass frozen dataclasses and pandas DataFrames whose columns are declared
once in :mod:`orinprof.results`.
"""

from orinprof.errors import OrinprofError

__version__ = "0.1.0"
__all__ = ["OrinprofError", "__version__"]
