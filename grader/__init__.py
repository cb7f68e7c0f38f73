"""Automated grading harness for the CIFAR-10 lab."""

__version__ = "0.1.0"
