"""Latent concept association (Sec. 4 of the paper): latent space, sampler, one-layer model,
constructed matrices (Thm 1, eq. 5.1), trainer and analyses."""
