"""Helpers for the browser tests."""


def full_page_shot(page, path) -> None:
    """The whole page as a window tall enough to show it all: a full-page
    capture would draw the sticky, viewport-high sidebar wherever the last
    click scrolled to, cut off partway down the page."""
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path)
    page.set_viewport_size(size)
