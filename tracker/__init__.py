"""Real-time dense-landmark 3D face tracker (Wood et al., ECCV 2022)."""

__version__ = "0.1.0"
