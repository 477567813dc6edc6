"""Rendering an issue: once per issue the layout, the CSS inlining and the plain text;
per recipient only the personal fields are filled in.

Personal fields (`{{ unsubscribe_url }}`, `{{ subscriber.name }}` …) are rendered as markers
made of letters and digits only. Premailer URL-encodes attribute values, so a Jinja
placeholder left in an `href` would come out as `{{%20unsubscribe_url%20}}`; a marker
survives inlining untouched and is replaced afterwards, with HTML escaping.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import mimetypes
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from smakom_cli.compose.content import (
    Content,
    ImageRef,
    Section,
    markdown_html,
    markdown_text,
    render_content,
)
from smakom_cli.compose.images import (
    COLUMN_WIDTH,
    archive_path,
    content_id,
    display_size,
    linked_url,
)
from smakom_cli.compose.issue import Issue
from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

# "mail": as the folder and the issue choose (`images = "embed"` or `"link"`);
# "web": relative to the archive's pages.
ImageMode = Literal["mail", "embed", "link", "web"]
HTML_TEMPLATE = "newsletter.html"
TEXT_TEMPLATE = "newsletter.txt"
ALWAYS_FIELDS = ("email", "name", "organisation")
SOCIAL_ICON_SIZE = 24
_MARKER = re.compile(r"smakomfield(\d+)end")
_HEADING = re.compile(r"<(/?)h([1-5])\b")
_IGNORED_STYLE = re.compile(
    r"""<style\b[^>]*\bdata-premailer=["']ignore["'][^>]*>(.*?)</style>""", re.DOTALL
)
_CSS_LOGGER = "CSSUTILS"  # the logger cssutils (and so premailer) reports CSS errors to
# Premailer checks inline `style` attributes against a list of CSS properties that knows no
# mail-client ones (`mso-line-height-rule`); stylesheets are read without that check.
_NOT_A_CSS_PROBLEM = "Unknown Property name"

ImageResolver = Callable[[str, Path | None, str], str]


@dataclass(frozen=True)
class Field:
    """A personal value the template asked for: `unsubscribe_url` or `subscriber.<column>`."""

    name: str
    fallback: str = ""


@dataclass(frozen=True)
class PersonalText:
    """A body rendered once, with holes where each recipient's own values go."""

    chunks: tuple[str, ...]
    fields: tuple[Field, ...]
    is_html: bool

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.chunks[0]]
        for slot, chunk in zip(self.fields, self.chunks[1:], strict=True):
            value = values.get(slot.name) or slot.fallback
            out.append(html.escape(value) if self.is_html else value)
            out.append(chunk)
        return "".join(out)


@dataclass(frozen=True)
class ImageFile:
    """A local image the issue shows: embedded in mail, copied beside web pages."""

    src: str
    path: Path
    origin: str

    @property
    def mime_type(self) -> str:
        return mimetypes.guess_type(self.path.name)[0] or "application/octet-stream"


@dataclass(frozen=True)
class RenderedIssue:
    """Everything about an issue that is the same for every recipient."""

    issue: Issue
    html: PersonalText
    text: PersonalText
    content: Content
    images: tuple[ImageFile, ...]
    web_url: str
    image_mode: str = "embed"
    """How the mail carries local images: `embed` (inside it), `link` or `web`."""
    css_problems: tuple[str, ...] = ()
    """What the CSS parser reported about the HTML template's rules (skipped by it)."""
    template_name: str = HTML_TEMPLATE
    """The HTML template used, as the user knows it (`templates/newsletter.html`)."""

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """The HTML and plain-text bodies for one recipient."""
        return self.html.fill(values), self.text.fill(values)


def personal_values(fields: Mapping[str, str], unsubscribe_url: str) -> dict[str, str]:
    """The values one recipient's fields take, keyed as the template's `Field.name`s."""
    values = {f"subscriber.{name}": value for name, value in fields.items()}
    values["unsubscribe_url"] = unsubscribe_url
    return values


def web_url(config: Config, issue: Issue) -> str:
    """The address of the issue's web version, as `smakom archive` lays it out."""
    base = config.newsletter.web_base_url.rstrip("/")
    return f"{base}/{issue.slug}.html" if base else ""


def default_templates_dir() -> Path:
    """The templates shipped with smakom: inside the package when installed from a wheel,
    at the top of the repository when run from a checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


def template_environment(config: Config) -> jinja2.Environment:
    """Templates in the newsletter folder's `templates/` override the shipped ones."""
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(config.templates_dir, encoding="utf-8"),
            jinja2.FileSystemLoader(default_templates_dir(), encoding="utf-8"),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["underline"] = _underline
    env.filters["website_name"] = _website_name
    env.filters["default"] = _default
    env.filters["d"] = _default
    env.filters["on_dark"] = _on_dark
    return env


def mail_image_mode(config: Config, issue: Issue) -> Literal["embed", "link"]:
    """How the mail carries local images: the issue's `images:`, else the folder's."""
    mode = issue.images or config.newsletter.images
    if mode == "link" and not config.newsletter.web_base_url:
        raise SmakomError(
            _(
                "{path}: 'images: link' needs [newsletter] web_base_url in {name}, "
                "where `smakom archive` publishes the images."
            ).format(path=issue.path, name=config.path.name)
        )
    return "link" if mode == "link" else "embed"


def render_issue(
    issue: Issue,
    config: Config,
    *,
    columns: Sequence[str] = (),
    images: ImageMode = "mail",
    template_env: jinja2.Environment | None = None,
) -> RenderedIssue:
    """Render an issue once; `columns` are the subscriber list's, usable in templates."""
    mode = mail_image_mode(config, issue) if images == "mail" else images
    collected: dict[Path, ImageFile] = {}
    image_src = _image_resolver(mode, config, collected)

    def body_image(ref: ImageRef) -> str:
        return image_src(ref.src, ref.local_path, f"{issue.path.name} line {ref.line}")

    content = render_content(issue, body_image)
    env = template_env or template_environment(config)
    context = _context(issue, config, content, image_src)
    html_text = _render(env, HTML_TEMPLATE, context, columns)
    text = _render(env, TEXT_TEMPLATE, context, columns)
    template_name = _template_name(env, config)
    inlined, css_problems = _inline_css(html_text, diagnose=template_name != HTML_TEMPLATE)
    return RenderedIssue(
        issue=issue,
        html=_personal_text(inlined, is_html=True),
        text=_personal_text(_tidy_text(text), is_html=False),
        content=content,
        images=tuple(collected.values()),
        web_url=context["web_url"],
        image_mode=mode,
        css_problems=css_problems,
        template_name=template_name,
    )


def _image_resolver(
    mode: Literal["embed", "link", "web"], config: Config, collected: dict[Path, ImageFile]
) -> ImageResolver:
    def resolve(src: str, local: Path | None, origin: str) -> str:
        if local is None:
            return src
        if local not in collected:
            if mode == "embed":
                ref = f"cid:{content_id(config.folder, local)}"
            elif mode == "link":
                ref = linked_url(config.newsletter.web_base_url, config.folder, local)
            else:
                ref = archive_path(config.folder, local)
            collected[local] = ImageFile(src=ref, path=local, origin=origin)
        return collected[local].src

    return resolve


def _template_name(env: jinja2.Environment, config: Config) -> str:
    """`templates/newsletter.html` for the folder's own template, else the shipped one's name."""
    filename = env.get_template(HTML_TEMPLATE).filename
    if filename and Path(filename).resolve().parent == config.templates_dir.resolve():
        return f"{config.newsletter.templates}/{HTML_TEMPLATE}"
    return HTML_TEMPLATE


@dataclass(frozen=True)
class _SocialLink:
    label: str
    url: str
    icon_src: str


def _local_image(config: Config, value: str) -> Path | None:
    return None if not value or "://" in value else (config.folder / value).resolve()


def template_context(
    config: Config,
    image_src: ImageResolver,
    issue: Issue | None = None,
    sections: Sequence[Section] = (),
) -> dict[str, Any]:
    """What the mail's and the web pages' templates see: the office's brand, contact, social
    and footer blocks, and with an issue its title, banner and sections."""

    def config_image(value: str, key: str) -> str:
        if not value:
            return ""
        return image_src(value, _local_image(config, value), f"{config.path.name} {key}")

    context: dict[str, Any] = {
        "config": config,
        "brand": config.brand,
        "contact": config.contact,
        "social": config.social,
        "footer": config.footer,
        "logo_src": config_image(config.brand.logo, "[brand] logo"),
        "social_html": Markup(markdown_html(config.social.text)),  # noqa: S704 - the office's own config
        "social_links": [
            _SocialLink(link.label, link.url, config_image(link.icon, "[[social.links]] icon"))
            for link in config.social.links
        ],
    }
    if issue is not None:
        context["issue"] = issue
        context["banner"] = issue.banner or config.brand.banner
        context["sections"] = [demoted(section) for section in sections]
    return context


def _context(
    issue: Issue, config: Config, content: Content, image_src: ImageResolver
) -> dict[str, Any]:
    logo_width, logo_height = display_size(
        _local_image(config, config.brand.logo), min(config.brand.logo_width, COLUMN_WIDTH)
    )
    return {
        **template_context(config, image_src, issue, content.sections),
        "logo_width": logo_width,
        "logo_height": logo_height,
        "social_icon_size": SOCIAL_ICON_SIZE,
        "sender": config.sender,
        "web_url": web_url(config, issue),
        "social_text": markdown_text(config.social.text),
    }


class _FieldMarkers:
    """Hands out a marker for each personal field the template prints, in order."""

    def __init__(self) -> None:
        self.fields: list[Field] = []

    def mark(self, slot: Field) -> str:
        self.fields.append(slot)
        return f"smakomfield{len(self.fields) - 1}end"


@dataclass(frozen=True)
class _PersonalValue:
    """What a template sees for a personal field; printing it leaves a marker."""

    markers: _FieldMarkers = field(compare=False)
    slot: Field

    def __str__(self) -> str:
        return self.markers.mark(self.slot)

    def __html__(self) -> str:
        return str(self)


class _Subscriber:
    """`subscriber` in templates: one attribute per column of the subscriber list."""

    def __init__(self, markers: _FieldMarkers, columns: Sequence[str]) -> None:
        self._markers = markers
        self._columns = frozenset((*ALWAYS_FIELDS, *columns))

    def __getattr__(self, name: str) -> _PersonalValue:
        if name.startswith("_") or name not in self._columns:
            raise AttributeError(name)
        return _PersonalValue(self._markers, Field(f"subscriber.{name}"))

    def __getitem__(self, name: str) -> _PersonalValue:
        try:
            return self.__getattr__(name)
        except AttributeError:
            raise KeyError(name) from None


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, also for personal fields: used when a subscriber's value is empty."""
    if isinstance(value, _PersonalValue):
        return _PersonalValue(value.markers, Field(value.slot.name, str(default_value)))
    return jinja2.filters.do_default(value, default_value, boolean)


def _render(
    env: jinja2.Environment, name: str, context: dict[str, Any], columns: Sequence[str]
) -> tuple[str, tuple[Field, ...]]:
    markers = _FieldMarkers()
    personal = {
        "subscriber": _Subscriber(markers, columns),
        "unsubscribe_url": _PersonalValue(markers, Field("unsubscribe_url")),
    }
    rendered = render_template(env, name, {**context, **personal})
    return rendered, tuple(markers.fields)


def render_template(
    env: jinja2.Environment, name: str, context: Mapping[str, Any], *, undefined_hint: str = ""
) -> str:
    """A template filled in; its mistakes become one line naming the template (and the line)."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise SmakomError(
            _("template {value} line {lineno}: {message}.").format(
                value=exc.filename or name, lineno=exc.lineno, message=exc.message
            )
        ) from None
    except jinja2.UndefinedError as exc:
        raise SmakomError(
            _("template {name}: unknown variable: {message}.{undefined_hint}").format(
                name=name, message=exc.message, undefined_hint=undefined_hint
            )
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise SmakomError(_("template {name} not found.").format(name=exc.name)) from None
    except UnicodeDecodeError:
        raise SmakomError(
            _("template {name}: is not UTF-8 text; save it as UTF-8.").format(name=name)
        ) from None
    except SmakomError:
        raise
    except Exception as exc:
        # A template is a program the office may edit: whatever its expressions raise
        # ({{ 1 / 0 }}, an unknown filter inside a branch) is a mistake in that file, named
        # with its line; --debug shows the whole story.
        raise SmakomError(
            _("template {value} line {lineno}: {message}.").format(
                value=name, lineno=_template_line(exc, env, name), message=str(exc).rstrip(".")
            )
        ) from exc


def _template_line(exc: BaseException, env: jinja2.Environment, name: str) -> str:
    """The line of template `name` that was running when `exc` was raised (Jinja puts the
    template's own lines into the traceback), or "?"."""
    try:
        filename = env.get_template(name).filename
    except Exception:  # it failed as it loaded: no line of it ran
        return "?"
    line = "?"
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == filename:
            line = str(trace.tb_lineno)
        trace = trace.tb_next
    return line


def demoted(section: Section) -> Section:
    """In the mail and on the web page the issue title is the one `<h1>` and each section's
    title an `<h2>`, so the headings inside a section move down one level."""
    html_text = _HEADING.sub(lambda m: f"<{m[1]}h{int(m[2]) + 1}", section.html)
    return dataclasses.replace(section, html=html_text)


def _personal_text(rendered: tuple[str, tuple[Field, ...]], *, is_html: bool) -> PersonalText:
    text, fields = rendered
    parts = _MARKER.split(text)
    chunks = tuple(parts[0::2])
    order = tuple(fields[int(index)] for index in parts[1::2])
    if any("smakomfield" in chunk.lower() for chunk in chunks):
        raise SmakomError(
            _(
                "a template changes a personal field with a filter; personal fields "
                "such as {{ subscriber.name }} can only be printed, optionally with | "
                "default('…')."
            )
        )
    return PersonalText(chunks=chunks, fields=order, is_html=is_html)


def _inline_css(
    rendered: tuple[str, tuple[Field, ...]], *, diagnose: bool
) -> tuple[tuple[str, tuple[Field, ...]], tuple[str, ...]]:
    """Inline the layout's CSS once per issue, and what the CSS parser said about it.

    A `<style data-premailer="ignore">` (client resets, dark mode, small screens) is kept
    as written. Premailer is kept from turning CSS widths and heights into `width`/`height`
    attributes: an image's pixel `width` is what Outlook for Windows draws it at, and
    `height="auto"` is not valid HTML. With `diagnose` (a template of the folder's own;
    the shipped one is tested clean) the parser's messages are collected, the kept block
    parsed for them too, and premailer's cache of parsed CSS is bypassed so that a second
    render in the same process reports the same problems.
    """
    import cssutils

    premailer = _import_premailer()
    text, fields = rendered
    with _css_messages() as messages:
        if diagnose:
            for block in _IGNORED_STYLE.findall(text):
                cssutils.parseString(block, validate=False)
        inliner = premailer.Premailer(
            text,
            keep_style_tags=False,
            remove_classes=False,
            strip_important=False,
            disable_validation=True,
            disable_basic_attributes=["width", "height"],
            allow_network=False,
            cache_css_parsing=not diagnose,
            # Giving floated images an `align` (for Outlook) parses every image's style with
            # cssutils, a third of the first inlining's time; only a layout with a float needs it.
            align_floating_images="float" in text,
        )
        inlined = inliner.transform(pretty_print=False)
    return (inlined, fields), tuple(dict.fromkeys(messages)) if diagnose else ()


def _import_premailer() -> Any:
    """Premailer, without importing requests (with urllib3 and chardet, a tenth of a
    second, more than premailer itself).

    premailer needs requests only to fetch external stylesheets, which `allow_network=False`
    never does. While premailer is imported it gets a stand-in that imports the real requests
    on first use, so anything that does use it still works.
    """
    if "premailer" in sys.modules or "requests" in sys.modules:
        import premailer

        return premailer

    def real(name: str) -> object:
        import requests

        return getattr(requests, name)

    stand_in = types.ModuleType("requests")
    stand_in.__getattr__ = real  # type: ignore[method-assign]  # PEP 562, module __getattr__
    sys.modules["requests"] = stand_in
    try:
        import premailer
    finally:
        del sys.modules["requests"]
    return premailer


@contextmanager
def _css_messages() -> Iterator[list[str]]:
    """Collect what cssutils logs for the duration of one render, and keep it off the
    terminal; the logger is left as it was found afterwards."""
    logger = logging.getLogger(_CSS_LOGGER)
    messages: list[str] = []

    def collect(record: logging.LogRecord) -> bool:
        message = record.getMessage().strip()
        if record.levelno >= logging.WARNING and _NOT_A_CSS_PROBLEM not in message:
            messages.append(message)
        return False

    level = logger.level
    logger.addFilter(collect)
    logger.setLevel(logging.WARNING)
    try:
        yield messages
    finally:
        logger.removeFilter(collect)
        logger.setLevel(level)


def _tidy_text(rendered: tuple[str, tuple[Field, ...]]) -> tuple[str, tuple[Field, ...]]:
    text, fields = rendered
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n", fields


def _on_dark(color: str, lightness: float = 0.6) -> str:
    """A brand colour made light enough to read on a dark background (dark mode): mixed
    with white. A colour that is not `#rgb` or `#rrggbb` becomes a light grey-blue."""
    digits = color.strip().removeprefix("#")
    if len(digits) == 3:
        digits = "".join(char * 2 for char in digits)
    try:
        channels = [int(digits[i : i + 2], 16) for i in (0, 2, 4)] if len(digits) == 6 else []
    except ValueError:
        channels = []
    if not channels:
        return "#a9c7d3"
    mixed = (round(c + (255 - c) * lightness) for c in channels)
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _underline(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}"


def _website_name(url: str) -> str:
    """`https://www.smakom.se/` shows as `www.smakom.se`."""
    return re.sub(r"^https?://", "", url).rstrip("/")
