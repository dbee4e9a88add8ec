"""Prompt safety: word lists per policy (Chinese and English) and the matcher that screens job prompts."""
