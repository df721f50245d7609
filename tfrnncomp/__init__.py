"""tfrnncomp: learned image compression with recurrent networks (TF2/Keras)."""

__version__ = "0.1.0"
