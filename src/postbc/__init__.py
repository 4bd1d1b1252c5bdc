"""postbc: Posterior Behavioral Cloning for diffusion policies."""

__version__ = "0.1.0"
