"""Provenance labels for exported content (GB 45438-2025 implicit/explicit labels, C2PA, invisible watermark).

Entry point: `LabelService` (service.py). Nothing here loads or generates anything at import time.
"""

from zhike.provenance.labels import LabelConfig, Labelled
from zhike.provenance.service import LabelService

__all__ = ["LabelConfig", "LabelService", "Labelled"]
