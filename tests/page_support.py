"""Reading pages as a member sees them."""

import re


def text(response, html: str | None = None) -> str:
    """The page's visible words, tags stripped and spaces collapsed."""
    html = response.content.decode() if html is None else html
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
