"""RMC: robust compression of pretrained encoders (Du et al., EACL 2023), as a pure library.

The equations live in files named after them: `difficulty` (loss variance, Eq. 1),
`smoothing` (Eq. 2), `losses` (Eq. 3 and the baselines), `metrics` (F_bias, loyalty),
`pruning` (iterative magnitude pruning). `pipeline.run` runs the method end to end.
"""

__version__ = "0.1.0"
