"""Sphinx configuration of rtc_trio's API reference: ``sphinx-build -W -b html docs docs/_build``."""

project = "rtc_trio"
author = "rtc_trio developers"
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
exclude_patterns = ["_build"]
html_theme = "alabaster"
