"""Words as data: platform styles and limits for copy (titles, notes, scripts) and measures of generated text.

Model-free (layer 6, beside kb and imaging): styles.py reads the platform styles in data/*.json, measures.py
counts and cuts, limits.py enforces a limit the same way for every op, layout.py reads the model's answer,
colours.py names a product photo's colours.
"""

from zhike.words.limits import Fitted, enforce_limit
from zhike.words.measures import RULES, LengthRule, chinese_ratio, fit_title, text_length

__all__ = ["RULES", "Fitted", "LengthRule", "chinese_ratio", "enforce_limit", "fit_title", "text_length"]
