"""Model code: plain typed step functions, one module per pipeline family (no doit, no Hydra)."""
