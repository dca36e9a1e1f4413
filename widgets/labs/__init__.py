"""The learning labs: small textbook experiments a person can poke at (no network training here)."""
from widgets.labs.descent_lab import DescentLab
from widgets.labs.gradient_lab import GradientLab
from widgets.labs.landscape_lab import LandscapeLab
from widgets.labs.loss_lab import LossLab

__all__ = ["DescentLab", "GradientLab", "LandscapeLab", "LossLab"]
