"""Ways of making a student, one module each, registered in registry.py: IMP (imp.py),
structured heads and neurons (structured.py, rebuilt by rmc_core/pruned_bert.py), a smaller encoder
(distilled.py), learnt masks over frozen weights (masked.py, SRNets); the pruning schedule they
share is schedule.py."""

# Registration order is the order the run form offers them: IMP (the default) first.
from rmc_core.compression import imp, structured, distilled, masked  # noqa: F401, I001 - registers the built-in kinds
from rmc_core.compression.registry import COMPRESSIONS, CompressionConfig, CompressionSpec, register, spec_of

__all__ = ["COMPRESSIONS", "CompressionConfig", "CompressionSpec", "register", "spec_of"]
