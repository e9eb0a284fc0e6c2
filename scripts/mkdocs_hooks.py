"""mkdocs hook: docstrings name objects with Sphinx roles (:func:`x`); show them as plain code."""

import re

_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod|exc):(?=<code>)")


def on_page_content(html, **kwargs):
    return _ROLE.sub("", html)
