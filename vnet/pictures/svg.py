"""The few SVG pieces the pictures share: escaping, a document, text and boxes.

Pure functions returning strings; touches nothing.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

__all__ = ["FONT", "attrs", "document", "element", "open_group", "text"]

FONT = "font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\""


def attrs(**values: object) -> str:
    """` name="value"` pairs, escaped; `data_x` becomes `data-x`, `class_` `class`."""
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        key = name.rstrip("_").replace("_", "-")
        parts.append(f" {key}={quoteattr(str(value))}")
    return "".join(parts)


def element(tag: str, **values: object) -> str:
    """An empty element: `<tag a="1"/>`."""
    return f"<{tag}{attrs(**values)}/>"


def open_group(**values: object) -> str:
    return f"<g{attrs(**values)}>"


def text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "middle",
         weight: str | None = None, fill: str = "#222", class_: str | None = None) -> str:
    opening = attrs(x=f"{x:.1f}", y=f"{y:.1f}", font_size=size, text_anchor=anchor,
                    font_weight=weight, fill=fill, class_=class_)
    return f"<text{opening}>{escape(content)}</text>"


def document(width: float, height: float, body: list[str], title: str) -> str:
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0f}\" "
            f"height=\"{height:.0f}\" viewBox=\"0 0 {width:.0f} {height:.0f}\" {FONT}>\n"
            f"<title>{escape(title)}</title>\n"
            f"<rect x=\"0\" y=\"0\" width=\"{width:.0f}\" height=\"{height:.0f}\" "
            f"fill=\"white\"/>\n" + "\n".join(body) + "\n</svg>\n")
