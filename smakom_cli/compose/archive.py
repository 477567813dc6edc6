"""The web version: a page per issue, an index newest first and an Atom feed, as static files.

Each page is `<slug>.html`, the address `render.web_url` puts in every mail. A page is the
same for every reader, so its templates get no subscriber and no unsubscribe token: only the
unsubscribe address from `smakom.toml`, with a ready subject, and a line saying that the
link in one's own newsletter works too.
"""

from __future__ import annotations

import datetime as dt
import html
import shutil
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from smakom_cli.atomic import writing
from smakom_cli.compose.issue import Issue, load_issue
from smakom_cli.compose.render import (
    ImageResolver,
    RenderedIssue,
    demoted,
    render_issue,
    render_template,
    template_context,
    template_environment,
)
from smakom_cli.config import Config
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import _

DEFAULT_FOLDER = "site"
PAGE_TEMPLATE = "web.html"
INDEX_TEMPLATE = "index.html"
FEED_NAME = "feed.xml"
ATOM = "http://www.w3.org/2005/Atom"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


@dataclass(frozen=True)
class ArchiveReport:
    """What `smakom archive` wrote, all inside `folder`."""

    folder: Path
    pages: tuple[Path, ...]
    index: Path
    feed: Path
    images: tuple[Path, ...]


def write_archive(
    config: Config, issue_files: Sequence[Path] = (), folder: Path | None = None
) -> ArchiveReport:
    """Write the site for these issues (default: every `*.md` in the issues folder).

    The index and the feed list exactly these issues, so a draft left out stays unpublished.
    """
    folder = folder or config.folder / DEFAULT_FOLDER
    issues = _load_issues(config, issue_files)
    env = template_environment(config)
    rendered = [render_issue(issue, config, images="web", template_env=env) for issue in issues]
    images = {image.path: image for r in rendered for image in r.images}
    web_src = _copied({path: image.src for path, image in images.items()})
    way_out = _way_out(config)

    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for one in rendered:
        page = folder / _page_name(one.issue)
        context = template_context(config, web_src, one.issue, one.content.sections)
        with writing(page):
            page.write_text(_render(env, PAGE_TEMPLATE, {**context, **way_out}), encoding="utf-8")
        pages.append(page)
    copied = []
    for image in images.values():
        if not image.path.is_file():
            raise SmakomError(
                _("{origin}: the image {path} does not exist.").format(
                    origin=image.origin, path=image.path
                )
            )
        target = folder / image.src
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing(target):
            copied.append(Path(shutil.copyfile(image.path, target)))
    index = folder / "index.html"
    entries = [(issue, _page_name(issue)) for issue in issues]
    context = {**template_context(config, web_src), **way_out, "entries": entries}
    with writing(index):
        index.write_text(_render(env, INDEX_TEMPLATE, context), encoding="utf-8")
    feed = folder / FEED_NAME
    with writing(feed):
        ET.ElementTree(_feed(config, rendered)).write(feed, encoding="utf-8", xml_declaration=True)
    return ArchiveReport(folder, tuple(pages), index, feed, tuple(copied))


def _load_issues(config: Config, issue_files: Sequence[Path]) -> list[Issue]:
    """The issues, newest first: by front-matter `date`, else by file name."""
    paths = list(issue_files) or sorted(config.issues_dir.glob("*.md"))
    if not paths:
        raise SmakomError(
            _("no issues (*.md files) in {issues_dir}.").format(issues_dir=config.issues_dir)
        )
    by_slug: dict[str, Issue] = {}
    for path in paths:
        issue = by_slug.setdefault(path.stem, load_issue(path))
        if issue.path.resolve() != path.resolve():
            raise SmakomError(
                _("{path} and {path2} would both become {page_name}; rename one.").format(
                    path=issue.path, path2=path, page_name=_page_name(issue)
                )
            )
    return sorted(by_slug.values(), key=lambda i: (str(i.date or i.slug), i.slug), reverse=True)


def _page_name(issue: Issue) -> str:
    return f"{issue.slug}.html"


# The subject a reader's unsubscribe mail from the web version gets, ready written; `smakom
# inbox` reads it as a request from the address it comes from.
WEB_UNSUBSCRIBE_SUBJECT = "Avregistrera mig"


def web_way_out(config: Config) -> str:
    """How a reader of the public pages leaves: the unsubscribe address with a ready subject.

    Never the one-click page: without a reader's own token it can only say the link does not
    work. "" when there is no address (`smakom check` warns).
    """
    mailto = config.unsubscribe.mailto
    return f"mailto:{mailto}?subject={quote(WEB_UNSUBSCRIBE_SUBJECT)}" if mailto else ""


def _way_out(config: Config) -> dict[str, str]:
    """What every page shows besides the office's blocks: the way out and the feed."""
    return {"unsubscribe_url": web_way_out(config), "feed_url": FEED_NAME}


def _copied(image_srcs: Mapping[Path, str]) -> ImageResolver:
    """Configured images are copied where the issues' renders put them (`images/…`)."""

    def web_src(src: str, local: Path | None, origin: str) -> str:
        return src if local is None else image_srcs.get(local, "")

    return web_src


def _render(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    return render_template(
        env,
        name,
        context,
        undefined_hint=" "
        + _("A web page is the same for every reader, so it has no subscriber fields."),
    )


def _feed(config: Config, rendered: Sequence[RenderedIssue]) -> ET.Element:
    """An Atom 1.0 feed (RFC 4287). Links are relative to the feed, like the pages' links;
    ids are derived from the list id so they survive a move to another web host."""
    # Plain tag names under an explicit xmlns: ElementTree would otherwise invent an `ns0:`
    # prefix, and registering one changes its global state.
    feed = ET.Element("feed", xmlns=ATOM)
    if config.newsletter.web_base_url:
        feed.set(_XML_BASE, config.newsletter.web_base_url.rstrip("/") + "/")
    _add(feed, "id", _atom_id(config.list_id))
    _add(feed, "title", config.newsletter.name)
    _add(feed, "updated", max(_updated(r.issue) for r in rendered).isoformat())
    _add(feed, "link", rel="self", href=FEED_NAME, type="application/atom+xml")
    _add(feed, "link", rel="alternate", href="index.html", type="text/html")
    author = _add(feed, "author")
    _add(author, "name", config.sender.name or config.newsletter.name)
    feed.extend(_entry(config, r) for r in rendered)
    ET.indent(feed)
    return feed


def _entry(config: Config, rendered: RenderedIssue) -> ET.Element:
    issue = rendered.issue
    article = "".join(
        (f"<h2>{html.escape(s.title)}</h2>" if s.title else "") + demoted(s).html
        for s in rendered.content.sections
    )
    entry = ET.Element("entry")
    _add(entry, "id", _atom_id(f"{config.list_id}/{issue.slug}"))
    _add(entry, "title", issue.title)
    _add(entry, "updated", _updated(issue).isoformat())
    _add(entry, "link", rel="alternate", href=_page_name(issue), type="text/html")
    if issue.preheader:
        _add(entry, "summary", issue.preheader)
    _add(entry, "content", article, type="html")
    return entry


def _updated(issue: Issue) -> dt.datetime:
    """The issue's date, or when its file last changed if it has none."""
    if issue.date:
        return dt.datetime.combine(issue.date, dt.time(), dt.UTC)
    changed = dt.datetime.fromtimestamp(issue.path.stat().st_mtime, dt.UTC)
    return changed.replace(microsecond=0)


def _add(parent: ET.Element, tag: str, text: str = "", **attributes: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attributes)
    child.text = text or None
    return child


def _atom_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"smakom:{name}").urn
