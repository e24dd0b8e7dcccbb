"""dplc: distribution-preserving lossy compression (Tschannen, Agustsson, Lucic, NeurIPS 2018).

The library: networks, quantizer, losses, the six training methods, a single-process training
loop and the codec object. It never imports Ray or DVC; MLflow appears in ``dplc.registry`` only.
"""

__version__ = "0.1.0"
