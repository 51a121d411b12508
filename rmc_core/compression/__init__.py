"""Ways of making a student, one algorithm module each, registered in registry.py: IMP
(imp.py), structured heads and neurons (structured.py, rebuilt by rmc_core/pruned_bert.py), a
smaller encoder (distilled.py), learnt masks over frozen weights (masked.py, SRNets),
successor layers that replace blocks of the teacher's (theseus.py), and sparse copies of
every layer replaced progressively and distilled layer by layer (spd.py); the pruning
schedule they share is schedule.py. Each kind's settings and registration are its
`<module>_config.py`, which the run config imports without torch; the algorithm module is
imported when a student of that kind is made. int8 quantization (rmc_core/quantization.py)
is a step on top of any of them (`student.quantize`)."""

# Registration order is the order the run form offers them: IMP (the default) first.
from rmc_core.compression import imp_config, structured_config, distilled_config, masked_config, theseus_config, spd_config  # noqa: F401, I001 - registers the built-in kinds
from rmc_core.compression.registry import COMPRESSIONS, CompressionConfig, CompressionSpec, register, spec_of

__all__ = ["COMPRESSIONS", "CompressionConfig", "CompressionSpec", "register", "spec_of"]
