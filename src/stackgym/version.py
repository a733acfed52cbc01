"""The stackgym release, recorded in every trace."""

__version__ = "0.1.0"
