"""gradtrace: configurable gradient-descent experiments with every gradient in TensorBoard."""

__version__ = "0.1.0"
