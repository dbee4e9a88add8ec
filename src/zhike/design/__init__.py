"""Batch design: templates as data and the renderer that fills them from data rows."""
