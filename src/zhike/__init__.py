"""Zhike (智客): a self-hosted AIGC studio."""

__version__ = "0.1.0"
