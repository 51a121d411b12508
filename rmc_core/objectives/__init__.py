"""What a student learns from: RMC (Eq. 1 difficulty.py, Eq. 2 smoothing.py, Eq. 3
losses.py) and the baselines, one `MethodSpec` each in methods.py."""
