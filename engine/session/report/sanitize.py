"""SVG made safe to put in a report: ``sanitize_svg`` cleans a foreign SVG (a panel screenshot) or
one of our own figures before a report embeds it: only drawing elements, no scripts, no event
handlers, no external references, no namespaces (inline SVG in HTML needs none, so the page holds no
URL at all). ``standalone()`` puts the SVG namespace back for a file of its own.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"

def standalone(svg: str) -> str:
    """The SVG as a file of its own: XML declaration and the SVG namespace (needed outside HTML)."""
    body = svg.lstrip()
    if body.startswith("<?xml"):
        return body
    if not re.match(r"<svg\b[^>]*\bxmlns=", body):
        body = re.sub(r"^<svg\b", f'<svg xmlns="{SVG_NS}"', body, count=1)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + ("\n" if not body.endswith("\n") else "")


_ALLOWED_TAGS = {
    "svg", "g", "defs", "style", "title", "desc", "rect", "circle", "ellipse", "line", "polyline",
    "polygon", "path", "text", "tspan", "clipPath", "linearGradient", "radialGradient", "stop",
    "symbol", "use", "mask", "pattern", "marker",
}
_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)(\s*format\([^)]*\))?""", re.IGNORECASE | re.DOTALL)
MAX_SCREENSHOT_BYTES = 8_000_000


def _clean_css(css: str) -> str:
    css = re.sub(r"@import[^;]*;?", "", css, flags=re.IGNORECASE)

    def repl(m):
        target = m.group(2).strip()
        return m.group(0) if target.startswith("#") else ""

    css = _URL.sub(repl, css)
    css = re.sub(r",\s*(?=[,;}])", "", css)  # dangling commas left by removed url(...) sources
    css = re.sub(r":\s*,\s*", ": ", css)
    css = re.sub(r"expression\s*\(", "(", css, flags=re.IGNORECASE)
    return css


_PNG_DATA = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=\s]+")
_ID_REF = re.compile(r"(url\(\s*['\"]?#)([^)'\"\s]+)")


def sanitize_svg(text: str, png_images: bool = False, id_prefix: str = "") -> str:
    """A foreign SVG made safe to embed: parsed as XML (DOCTYPE/entities refused), only drawing
    elements kept, no scripts, event handlers or external references (``url(...)``, ``href``);
    namespaces stripped (``standalone()`` puts the SVG one back for a file of its own). Raises
    ValueError if the text is not a usable SVG.

    ``png_images`` keeps ``<image>`` elements whose ``href`` is inline PNG data (a heatmap's
    pixels, drawn pixelated); ``id_prefix`` renames every id (and the references to it), so several SVGs can sit in
    one HTML page without their ids colliding."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty SVG")
    if len(text) > MAX_SCREENSHOT_BYTES:
        raise ValueError("SVG too large")
    if re.search(r"<!DOCTYPE|<!ENTITY", text, re.IGNORECASE):
        raise ValueError("SVG with a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None

    def local(name: str) -> str:
        return name.rsplit("}", 1)[-1]

    if local(root.tag) != "svg":
        raise ValueError("the root element is not <svg>")
    allowed = _ALLOWED_TAGS | ({"image"} if png_images else set())

    def clean(el: ET.Element) -> None:
        el.tag = local(el.tag)
        attrs = {}
        for k, v in el.attrib.items():
            name = local(k)
            low = name.lower()
            if low.startswith("on") or low in ("xmlns",):
                continue
            if low == "href":
                if el.tag == "image" and _PNG_DATA.fullmatch(v.strip()):
                    attrs["href"] = v.strip()
                    continue
                if not v.strip().startswith("#"):
                    continue
                name, v = "href", "#" + id_prefix + v.strip()[1:]
            if low == "id":
                v = id_prefix + v
            if low == "style":
                v = _clean_css(v)
            elif "url(" in v.lower():
                v = _clean_css(v)
            if id_prefix and "url(" in v:
                v = _ID_REF.sub(lambda m: m.group(1) + id_prefix + m.group(2), v)
            attrs[name] = v
        if el.tag == "image" and "href" in attrs:  # pixels drawn as cells, not blurred
            styles = (attrs.get("style", "").strip(" ;"), "image-rendering: pixelated")
            attrs["style"] = "; ".join(x for x in styles if x)
        el.attrib.clear()
        el.attrib.update(attrs)
        if el.tag == "style" and el.text:
            el.text = _clean_css(el.text)
        if el.tag == "image" and "href" not in el.attrib:
            el.tag = "g"  # an image without safe pixels: keep nothing of it
            el.attrib.clear()
        for child in list(el):
            if local(child.tag) in allowed:
                clean(child)
            else:
                el.remove(child)

    clean(root)
    return ET.tostring(root, encoding="unicode")
