"""The body of an issue: Markdown turned into sections of HTML and of plain text.

The syntax is plain CommonMark with three conventions, all readable as ordinary Markdown:
each `# Heading` starts a section; an image alone in its paragraph with a title,
`![alt](file.png "caption")`, is a figure with that caption; and a `::: signature` block
holds the signature under an article.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from mdit_py_plugins.container import container_plugin

from smakom_cli.compose.images import COLUMN_WIDTH, display_size
from smakom_cli.compose.issue import Issue

TEXT_WIDTH = 72
CONTAINERS = ("signature",)
# Plain-text readers know these from decades of mail: *emphasis*, **strong**, ~~struck~~.
_TEXT_MARKS = {"em": "*", "strong": "**", "s": "~~"}
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


@dataclass(frozen=True)
class ImageRef:
    """An image the issue shows, with where it is written (for the pre-send check)."""

    src: str
    alt: str
    caption: str
    line: int
    local_path: Path | None


@dataclass(frozen=True)
class Link:
    href: str
    text: str
    line: int


@dataclass(frozen=True)
class Section:
    """One `# Heading` and what follows it, up to the next one."""

    title: str
    html: str
    text: str


@dataclass(frozen=True)
class Content:
    sections: tuple[Section, ...]
    links: tuple[Link, ...]
    images: tuple[ImageRef, ...]


ImageSource = Callable[[ImageRef], str]


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"linkify": True, "html": False})
    md.enable(["linkify", "table", "strikethrough"])
    for name in CONTAINERS:
        md.use(container_plugin, name)
    md.add_render_rule("figure", _render_figure)
    md.add_render_rule("image", _render_image)
    return md


def image_refs_and_links(
    issue: Issue, tokens: Sequence[Token]
) -> tuple[list[ImageRef], list[Link]]:
    """Every image and link in the body, with the file line it is on."""
    images: list[ImageRef] = []
    links: list[Link] = []
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        line = issue.body_line + (token.map[0] if token.map else 0)
        link: Token | None = None
        link_text: list[str] = []
        for child in token.children:
            if child.type == "image":
                images.append(_image_ref(issue, child, line))
            elif child.type == "link_open":
                link, link_text = child, []
            elif child.type == "link_close" and link is not None:
                links.append(Link(str(link.attrGet("href") or ""), "".join(link_text), line))
                link = None
            elif link is not None and child.type in ("text", "code_inline"):
                link_text.append(child.content)
    return images, links


def render_content(issue: Issue, image_src: ImageSource) -> Content:
    """Render the issue body once: HTML and plain text for each section."""
    md = _markdown()
    tokens = md.parse(issue.body)
    images, links = image_refs_and_links(issue, tokens)
    _mark_figures(issue, tokens)
    env: dict[str, Any] = {"image_src": image_src, "issue": issue}
    sections = []
    for title, section_tokens in _split_sections(tokens):
        html = md.renderer.render(section_tokens, md.options, env)
        text = _blocks_to_text(SyntaxTreeNode(section_tokens).children)
        sections.append(Section(title=title, html=html, text=text))
    return Content(sections=tuple(sections), links=tuple(links), images=tuple(images))


def _image_ref(issue: Issue, token: Token, line: int) -> ImageRef:
    src = str(token.attrGet("src") or "")
    local = None
    if src and ":" not in src.split("/", maxsplit=1)[0]:
        local = (issue.path.parent / src).resolve()
    alt = "".join(child.content for child in token.children or [])
    return ImageRef(src, alt, str(token.attrGet("title") or ""), line, local)


def _mark_figures(issue: Issue, tokens: list[Token]) -> None:
    """Turn a paragraph holding only an image into one `figure` token with its caption."""
    index = 0
    while index + 2 < len(tokens):
        opening, inline, closing = tokens[index : index + 3]
        children = [c for c in inline.children or [] if c.type != "softbreak"]
        if (
            opening.type == "paragraph_open"
            and closing.type == "paragraph_close"
            and len(children) == 1
            and children[0].type == "image"
        ):
            line = issue.body_line + (inline.map[0] if inline.map else 0)
            figure = Token("figure", "div", 0, map=opening.map, block=True)
            figure.meta["image"] = _image_ref(issue, children[0], line)
            tokens[index : index + 3] = [figure]
        index += 1


def _split_sections(tokens: list[Token]) -> list[tuple[str, list[Token]]]:
    sections: list[tuple[str, list[Token]]] = []
    title, current = "", list[Token]()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open" and token.tag == "h1":
            if current or title:
                sections.append((title, current))
            title, current = tokens[index + 1].content.strip(), []
            index += 3
            continue
        current.append(token)
        index += 1
    if current or title:
        sections.append((title, current))
    return sections


def _render_figure(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    image: ImageRef = tokens[idx].meta["image"]
    html = (
        f'<div class="figure"><img class="figure-image" src="{escape(env["image_src"](image))}"'
        f' alt="{escape(image.alt)}"{_size_attributes(image)}></div>\n'
    )
    if image.caption:
        html += f'<p class="caption">{escape(image.caption)}</p>\n'
    return html


def _render_image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    token = tokens[idx]
    image = _image_ref(env["issue"], token, 0)
    return (
        f'<img class="inline-image" src="{escape(env["image_src"](image))}"'
        f' alt="{escape(image.alt)}"{_size_attributes(image)}>'
    )


def _size_attributes(image: ImageRef) -> str:
    """Pixel `width` (and `height`) no wider than the column, and a `max-width` to match:
    Outlook for Windows draws the attributes, everything else the style."""
    width, height = display_size(image.local_path, COLUMN_WIDTH)
    size = f' width="{width}"' + (f' height="{height}"' if height else "")
    return f'{size} style="max-width: {width}px;"'


def _blocks_to_text(nodes: Sequence[SyntaxTreeNode], indent: str = "") -> str:
    blocks = [block for node in nodes if (block := _block_to_text(node, indent))]
    return "\n\n".join(blocks)


def _block_to_text(node: SyntaxTreeNode, indent: str) -> str:
    kind = node.type
    if kind == "paragraph":
        return _wrap(_inline_text(node.children[0]), indent)
    if kind == "heading":
        title = _inline_text(node.children[0])
        rule = "-" if node.tag == "h2" else ""
        return f"{indent}{title}" + (f"\n{indent}{rule * len(title)}" if rule else "")
    if kind in ("bullet_list", "ordered_list"):
        return _list_to_text(node, indent)
    if kind == "blockquote":
        return _blocks_to_text(node.children, indent + "    ")
    if kind == "figure":
        image: ImageRef = node.meta["image"]
        return _wrap("\n".join(filter(None, (_image_text(image.alt), image.caption))), indent)
    if kind in ("fence", "code_block"):
        return textwrap.indent(node.content.rstrip("\n"), indent + "    ")
    if kind == "hr":
        return f"{indent}* * *"
    if kind.startswith("container_"):
        return _blocks_to_text(node.children, indent)
    if kind == "table":
        return _table_to_text(node, indent)
    return _blocks_to_text(node.children, indent)


def _list_to_text(node: SyntaxTreeNode, indent: str) -> str:
    start = int(str(node.attrs.get("start", 1)))
    items = []
    for number, item in enumerate(node.children, start=start):
        marker = f"{number}. " if node.type == "ordered_list" else "- "
        body = _blocks_to_text(item.children, indent + " " * len(marker))
        items.append(indent + marker + body[len(indent) + len(marker) :])
    return "\n".join(items)


def _table_to_text(node: SyntaxTreeNode, indent: str) -> str:
    rows = []
    for part in node.children:
        for row in part.children:
            cells = [
                _inline_text(cell.children[0]) if cell.children else "" for cell in row.children
            ]
            rows.append(indent + " | ".join(cells))
    return "\n".join(rows)


def _inline_text(node: SyntaxTreeNode) -> str:
    """Plain text of a paragraph; a link's target follows its text where it adds something."""
    parts: list[str] = []
    href_stack: list[tuple[str, int]] = []
    for token in node.token.children or [] if node.token else []:
        kind = token.type
        if kind in ("text", "code_inline"):
            parts.append(token.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            parts.append(_image_text("".join(c.content for c in token.children or [])))
        elif kind.endswith(("_open", "_close")) and kind.rpartition("_")[0] in _TEXT_MARKS:
            parts.append(_TEXT_MARKS[kind.rpartition("_")[0]])
        elif kind == "link_open":
            href_stack.append((str(token.attrGet("href") or ""), len(parts)))
        elif kind == "link_close" and href_stack:
            href, start = href_stack.pop()
            text = "".join(parts[start:])
            shown = readable_url(href)
            if shown not in (text, f"mailto:{text}", f"http://{text}", f"https://{text}"):
                parts.append(f" <{shown}>")
    return "".join(parts)


def _image_text(alt: str) -> str:
    """An image in the plain text: `[Bild: what it shows]`."""
    return f"[Bild: {alt.strip()}]" if alt.strip() else "[Bild]"


def readable_url(href: str) -> str:
    """A link as a reader should see it: `å`, `ä`, `ö` and an international domain in
    letters, not `%C3%A5` or `xn--`. Only letters are decoded; `%20`, `%2F` and the like
    stay, so the address shown still means the same (an IRI, RFC 3987)."""
    scheme, sep, rest = href.partition("://")
    if not sep:
        return _PERCENT_RUN.sub(_decode_letters, href)
    host, slash, path = rest.partition("/")
    return scheme + sep + _readable_host(host) + slash + _PERCENT_RUN.sub(_decode_letters, path)


def _readable_host(host: str) -> str:
    labels = []
    for label in host.split("."):
        try:
            labels.append(label.encode("ascii").decode("idna") if label[:4] == "xn--" else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def _decode_letters(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        decoded = bytes.fromhex(run.replace("%", "")).decode("utf-8")
    except UnicodeDecodeError:
        return run
    shown = (
        char if ord(char) > 127 and unicodedata.category(char)[0] in "LMNPS" else _quote(char)
        for char in decoded
    )
    return "".join(shown)


def _quote(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def _wrap(text: str, indent: str) -> str:
    return "\n".join(
        textwrap.fill(
            line,
            width=TEXT_WIDTH,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in text.split("\n")
    )


def markdown_text(source: str) -> str:
    """Plain text for a short Markdown snippet from the configuration (e.g. the social text)."""
    return _blocks_to_text(SyntaxTreeNode(_markdown().parse(source)).children)


def markdown_html(source: str) -> str:
    """HTML for a short Markdown snippet from the configuration."""
    return str(_markdown().render(source))
