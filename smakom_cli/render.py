"""Rendering an issue: once per issue the layout, the CSS inlining and the plain text;
per recipient only the personal fields are filled in.

Personal fields (`{{ unsubscribe_url }}`, `{{ subscriber.name }}` …) are rendered as markers
made of letters and digits only. Premailer URL-encodes attribute values, so a Jinja
placeholder left in an `href` would come out as `{{%20unsubscribe_url%20}}`; a marker
survives inlining untouched and is replaced afterwards, with HTML escaping.
"""

from __future__ import annotations

import hashlib
import html
import logging
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from smakom_cli.config import Config
from smakom_cli.content import Content, ImageRef, markdown_html, markdown_text, render_content
from smakom_cli.errors import SmakomError
from smakom_cli.issue import Issue

ImageMode = Literal["embed", "file", "web"]
HTML_TEMPLATE = "newsletter.html"
TEXT_TEMPLATE = "newsletter.txt"
ALWAYS_FIELDS = ("email", "name", "organisation")
_MARKER = re.compile(r"smakomfield(\d+)end")

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
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


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
    return env


def render_issue(
    issue: Issue,
    config: Config,
    *,
    columns: Sequence[str] = (),
    images: ImageMode = "embed",
    template_env: jinja2.Environment | None = None,
) -> RenderedIssue:
    """Render an issue once; `columns` are the subscriber list's, usable in templates."""
    collected: dict[Path, ImageFile] = {}
    image_src = _image_resolver(images, collected)

    def body_image(ref: ImageRef) -> str:
        return image_src(ref.src, ref.local_path, f"{issue.path.name} line {ref.line}")

    content = render_content(issue, body_image)
    env = template_env or template_environment(config)
    context = _context(issue, config, content, image_src)
    html_text = _render(env, HTML_TEMPLATE, context, columns)
    text = _render(env, TEXT_TEMPLATE, context, columns)
    return RenderedIssue(
        issue=issue,
        html=_personal_text(_inline_css(html_text), is_html=True),
        text=_personal_text(_tidy_text(text), is_html=False),
        content=content,
        images=tuple(collected.values()),
        web_url=context["web_url"],
    )


def _image_resolver(mode: ImageMode, collected: dict[Path, ImageFile]) -> ImageResolver:
    def resolve(src: str, local: Path | None, origin: str) -> str:
        if local is None:
            return src
        if mode == "file":
            return local.as_uri()
        if local not in collected:
            digest = hashlib.sha1(str(local).encode(), usedforsecurity=False).hexdigest()[:8]
            name = re.sub(r"[^A-Za-z0-9._-]", "_", local.name)
            ref = f"cid:{digest}.{name}@smakom" if mode == "embed" else f"images/{digest}-{name}"
            collected[local] = ImageFile(src=ref, path=local, origin=origin)
        return collected[local].src

    return resolve


@dataclass
class _SocialLink:
    label: str
    url: str
    icon_src: str


def _context(
    issue: Issue, config: Config, content: Content, image_src: ImageResolver
) -> dict[str, Any]:
    def config_image(value: str, key: str) -> str:
        if not value:
            return ""
        local = None if "://" in value else (config.folder / value).resolve()
        return image_src(value, local, f"{config.path.name} {key}")

    return {
        "issue": issue,
        "sections": content.sections,
        "config": config,
        "brand": config.brand,
        "contact": config.contact,
        "social": config.social,
        "footer": config.footer,
        "sender": config.sender,
        "banner": issue.banner or config.brand.banner,
        "web_url": web_url(config, issue),
        "logo_src": config_image(config.brand.logo, "[brand] logo"),
        "social_html": Markup(markdown_html(config.social.text)),  # noqa: S704 - the office's own config
        "social_text": markdown_text(config.social.text),
        "social_links": [
            _SocialLink(link.label, link.url, config_image(link.icon, "[[social.links]] icon"))
            for link in config.social.links
        ],
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
    try:
        rendered = env.get_template(name).render({**context, **personal})
    except jinja2.TemplateSyntaxError as exc:
        raise SmakomError(
            f"template {exc.filename or name} line {exc.lineno}: {exc.message}."
        ) from None
    except jinja2.UndefinedError as exc:
        raise SmakomError(f"template {name}: unknown variable: {exc.message}.") from None
    except jinja2.TemplateNotFound as exc:
        raise SmakomError(f"template {exc.name} not found.") from None
    return rendered, tuple(markers.fields)


def _personal_text(rendered: tuple[str, tuple[Field, ...]], *, is_html: bool) -> PersonalText:
    text, fields = rendered
    parts = _MARKER.split(text)
    chunks = tuple(parts[0::2])
    order = tuple(fields[int(index)] for index in parts[1::2])
    if any("smakomfield" in chunk.lower() for chunk in chunks):
        raise SmakomError(
            "a template changes a personal field with a filter; personal fields such as "
            "{{ subscriber.name }} can only be printed, optionally with | default('…')."
        )
    return PersonalText(chunks=chunks, fields=order, is_html=is_html)


def _inline_css(rendered: tuple[str, tuple[Field, ...]]) -> tuple[str, tuple[Field, ...]]:
    """Inline the layout's CSS once per issue; `@media` rules stay in a `<style>`."""
    import cssutils
    import premailer

    text, fields = rendered
    cssutils.log.setLevel(logging.CRITICAL)
    inliner = premailer.Premailer(
        text,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        allow_network=False,
        cssutils_logging_level=logging.CRITICAL,
        # Giving floated images an `align` (for Outlook) parses every image's style with
        # cssutils, a third of the first inlining's time; only a layout with a float needs it.
        align_floating_images="float" in text,
    )
    return inliner.transform(pretty_print=False), fields


def _tidy_text(rendered: tuple[str, tuple[Field, ...]]) -> tuple[str, tuple[Field, ...]]:
    text, fields = rendered
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n", fields


def _underline(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}"


def _website_name(url: str) -> str:
    """`https://www.smakom.se/` shows as `www.smakom.se`."""
    return re.sub(r"^https?://", "", url).rstrip("/")
