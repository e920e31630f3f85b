"""Feed-forward style network trainer (Johnson et al. 2016): `nst train` / `python -m train`."""
