"""`smakom preview --watch`: the issue shown in the browser while it is written.

A small web server on 127.0.0.1 serves the mail as the first subscriber gets it, with the
findings of `smakom check` above it. The files the rendering read (the issue, smakom.toml, the
images, the folder's templates, the lists) are polled for a change of their modification time
and size, which works alike on Windows, macOS and Linux; on a change the issue is rendered
again in this process (the Jinja templates stay compiled) and the page, which asks for the
rendering's version a few times a second, reloads itself. A mistake in a file is shown on the
page, above the last good rendering, and the next save tries again.
"""

from __future__ import annotations

import html as html_lib
import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from smakom_cli.compose.render import template_environment
from smakom_cli.config import Config, load_config
from smakom_cli.delivery.check import Finding
from smakom_cli.delivery.mailing import prepare
from smakom_cli.delivery.preview import Preview, build_preview
from smakom_cli.errors import SmakomError
from smakom_cli.i18n import LANGUAGE, _

if TYPE_CHECKING:
    import jinja2

    from smakom_cli.compose.render import RenderedIssue

# How often the files are looked at, and the page asks for a new version, in seconds.
POLL_SECONDS = 0.05
_PAGE_POLL_MS = 250
# A file's state as polling sees it: (modification time in ns, size), None when it is gone.
Stamp = tuple[int, int] | None


@dataclass(frozen=True)
class Rendering:
    """What the page shows: the last good mail, and the error of the last try if it failed."""

    version: int
    mail_html: str = ""
    preview: Preview | None = None
    images: tuple[Path, ...] = ()
    error: str = ""
    seconds: float = 0.0

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.preview.findings if self.preview else ()


@dataclass
class IssueWatcher:
    """Renders one issue on demand and knows whether the files it read have changed since."""

    config_path: Path
    issue_path: Path
    subscribers_path: Path | None
    as_email: str | None
    secret: bytes | None
    current: Rendering = field(default_factory=lambda: Rendering(version=0))
    _stamps: dict[Path, Stamp] = field(default_factory=dict)
    _environments: dict[tuple[Path, frozenset[str]], jinja2.Environment] = field(
        default_factory=dict
    )

    def render(self) -> Rendering:
        """Render again and make it the current rendering; a SmakomError becomes its error."""
        started = time.perf_counter()
        watched = {self.issue_path.resolve(), self.config_path.resolve()}
        # Stamped before they are read: a save while this renders is a change next time.
        before = {path: _stamp(path) for path in {*self._stamps, *watched, *_parents(watched)}}
        previous = self.current
        try:
            config = load_config(self.config_path)
            watched |= {config.subscribers_path, config.suppression_path}
            watched |= _files_in(config.templates_dir)
            mailing = prepare(
                config,
                self.issue_path,
                subscribers_path=self.subscribers_path,
                secret=self.secret,
                template_env=self._environment(config),
            )
            if self.subscribers_path is not None:
                watched.add(self.subscribers_path.resolve())
            watched |= {image.path for image in mailing.rendered.images}
            # A damaged suppression list stops a preview, as it stops every command.
            mailing.suppression.suppressed()
            shown = build_preview(mailing, self.as_email)
            rendering = Rendering(
                version=previous.version + 1,
                mail_html=_served_html(mailing.rendered, shown.html),
                preview=shown,
                images=tuple(image.path for image in mailing.rendered.images),
            )
        except SmakomError as exc:
            watched |= set(previous.images)
            rendering = replace(previous, version=previous.version + 1, error=str(exc))
        rendering = replace(rendering, seconds=time.perf_counter() - started)
        # A new file beside a watched one (an image added, a template that overrides) is seen
        # by its folder's time changing.
        watched |= _parents(watched)
        self._stamps = {path: before[path] if path in before else _stamp(path) for path in watched}
        self.current = rendering
        return rendering

    def changed(self) -> bool:
        """True when a file the last rendering read (or its folder) is new, changed or gone."""
        return any(_stamp(path) != stamp for path, stamp in self._stamps.items())

    def _environment(self, config: Config) -> jinja2.Environment:
        """The template environment, kept while the folder's templates are the same files:
        Jinja compiles a template once and recompiles it when its file changes."""
        folder = config.templates_dir
        key = (folder, frozenset(path.name for path in _files_in(folder)))
        if key not in self._environments:
            self._environments = {key: template_environment(config)}
        return self._environments[key]


def _parents(paths: set[Path]) -> set[Path]:
    return {path.parent for path in paths}


def _files_in(folder: Path) -> set[Path]:
    try:
        return {path.resolve() for path in folder.iterdir() if path.is_file()}
    except OSError:
        return set()


def _stamp(path: Path) -> Stamp:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


def _served_html(rendered: RenderedIssue, html: str) -> str:
    """The mail with its local images from this server (a page from http:// may not show
    file:// images), each by its number in the rendering."""
    for number, image in enumerate(rendered.images):
        html = html.replace(f'src="{html_lib.escape(image.src)}"', f'src="/images/{number}"')
    return html


def watch(
    watcher: IssueWatcher,
    on_render: Callable[[Rendering], None],
    stop: threading.Event,
    interval: float = POLL_SECONDS,
) -> None:
    """Render again whenever a watched file changes, until `stop` is set."""
    while not stop.wait(interval):
        if watcher.changed():
            on_render(watcher.render())


class PreviewServer(http.server.ThreadingHTTPServer):
    """The page, the mail, its images and the version, for this computer's browser only."""

    daemon_threads = True

    def __init__(self, watcher: IssueWatcher, port: int = 0) -> None:
        self.watcher = watcher
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PreviewServer

    def do_GET(self) -> None:
        rendering = self.server.watcher.current
        # Only this computer's own addresses: a web page elsewhere that points its own name at
        # 127.0.0.1 (DNS rebinding) must not read a subscriber's personalised mail.
        port = self.server.server_address[1]
        if self.headers.get("Host", "") not in {f"127.0.0.1:{port}", f"localhost:{port}"}:
            self._send(403, "text/plain", b"Forbidden")
            return
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, "text/html", page(rendering).encode("utf-8"))
        elif path == "/mail":
            self._send(200, "text/html", rendering.mail_html.encode("utf-8"))
        elif path == "/version":
            self._send(200, "text/plain", str(rendering.version).encode("ascii"))
        elif path.startswith("/images/") and path[8:].isdigit():
            self._image(rendering, int(path[8:]))
        else:
            self._send(404, "text/plain", b"Not found")

    def _image(self, rendering: Rendering, number: int) -> None:
        import mimetypes

        if number >= len(rendering.images):
            self._send(404, "text/plain", b"Not found")
            return
        image = rendering.images[number]
        try:
            body = image.read_bytes()
        except OSError:
            self._send(404, "text/plain", b"Not found")
            return
        self._send(200, mimetypes.guess_type(image.name)[0] or "application/octet-stream", body)

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        charset = "; charset=utf-8" if kind.startswith("text/") else ""
        self.send_header("Content-Type", kind + charset)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows each rendering, not each request."""


def page(rendering: Rendering) -> str:
    """The page around the mail: the envelope, the error and the findings, and the script that
    reloads it when the version changes (and keeps the mail's scroll position)."""
    esc = html_lib.escape
    parts = []
    shown = rendering.preview
    if shown is not None:
        rows = [
            (_("From"), shown.sender),
            (_("Subject"), shown.subject),
            (_("Preheader"), shown.preheader),
            (_("As"), shown.recipient.address),
        ]
        parts.append(
            "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"
        )
    if rendering.error:
        parts.append(f'<p class="error" role="alert">{esc(rendering.error)}</p>')
        if shown is not None:
            below = esc(_("Below: the last version that could be shown."))
            parts.append(f"<p>{below}</p>")
    elif rendering.findings:
        items = "".join(
            f'<li class="{finding.severity}">{esc(finding.where)}: {esc(finding.message)}</li>'
            for finding in rendering.findings
        )
        parts.append(f'<ul class="findings">{items}</ul>')
    elif shown is not None:
        nothing = esc(_("No findings: the check finds nothing to fix."))
        parts.append(f'<p class="ok">{nothing}</p>')
    mail = ""
    if shown is not None:
        label = esc(_("The mail"))
        mail = f'<iframe id="mail" src="/mail?v={rendering.version}" title="{label}"></iframe>'

    title = esc(shown.subject if shown else _("Preview"))
    return _PAGE.format(
        lang=LANGUAGE,
        title=title,
        version=rendering.version,
        poll=_PAGE_POLL_MS,
        header="".join(parts),
        mail=mail,
    )


_PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; font: 14px/1.4 system-ui, sans-serif; display: flex; flex-direction: column;
  height: 100vh; }}
header {{ padding: 8px 16px; background: #f4f4f4; border-bottom: 1px solid #ccc; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 0 12px; margin: 0; }}
dt {{ color: #555; }} dd {{ margin: 0; }}
.error {{ background: #fde8e8; color: #8a1111; padding: 8px; border-left: 4px solid #c00; }}
.findings {{ margin: 6px 0 0; padding-left: 20px; }}
li.error {{ color: #8a1111; }} li.warning {{ color: #7a5a00; }} .ok {{ color: #1e6b1e; }}
iframe {{ flex: 1; border: 0; width: 100%; }}
</style></head>
<body data-version="{version}"><header>{header}</header>{mail}
<script>
const frame = document.getElementById("mail");
if (frame) frame.addEventListener("load", () => {{
  const y = sessionStorage.getItem("smakom-scroll");
  if (y) frame.contentWindow.scrollTo(0, Number(y));
}});
async function poll() {{
  try {{
    const answer = await fetch("/version", {{cache: "no-store"}});
    if ((await answer.text()) !== document.body.dataset.version) {{
      if (frame) sessionStorage.setItem("smakom-scroll", frame.contentWindow.scrollY);
      location.reload();
      return;
    }}
  }} catch (stopped) {{}}
  setTimeout(poll, {poll});
}}
setTimeout(poll, {poll});
</script></body></html>
"""
