"""The words of an inbound e-mail: HTML made plain, a reply without its quote.

Pure. A mail that becomes a ticket or a comment is shown to staff as plain
text (escaped when rendered), so HTML mail is turned into text here and
nothing of its markup survives as markup: scripts, styles and the head are
dropped with their content, everything else keeps only its words.

A reply carries the whole conversation quoted below it; the comment it
becomes should hold what the customer wrote, so :func:`reply_text` cuts at
the first line that starts the quote. When in doubt it keeps text: losing a
customer's words is worse than showing a quote twice.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

#: Elements dropped with everything inside them.
_DROPPED = frozenset({"script", "style", "head", "template", "title"})

#: Elements that end a line (``li`` also starts an item, see ``_LIST_ITEM``).
_LINE_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "br",
        "center",
        "dd",
        "div",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "nav",
        "pre",
        "section",
        "tr",
    }
)

#: Elements that stand apart from what surrounds them by a blank line.
_PARAGRAPH_BLOCKS = frozenset(
    {"blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "table", "ul"}
)

#: Elements that never have content or an end tag.
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col"})

_LIST_ITEM = "- "
_LINK_SCHEMES = ("http://", "https://", "mailto:")
_SPACES = re.compile(r"\s+")
_LINE_SPACES = re.compile(r"[^\S\n]+")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _TextCollector(HTMLParser):
    """Collects the words of a document and the breaks between its blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropped = 0
        self._pre = 0
        self._bullet = False
        self._links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropped += 1
        elif tag == "body":
            # A head left open ends where the body starts.
            self._dropped = 0
        if self._dropped:
            return
        self._break(tag)
        if tag == "li":
            self._bullet = True
        elif tag == "pre":
            self._pre += 1
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self._links.append((href.strip(), len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # ``<br/>``: a start tag only; a closed ``<a/>`` or ``<p/>`` holds nothing.
        if tag in _VOID or tag not in _DROPPED:
            self.handle_starttag(tag, attrs)
            if tag not in _VOID:
                self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropped = max(0, self._dropped - 1)
            return
        if self._dropped or tag in _VOID:
            return
        if tag == "a" and self._links:
            self._close_link(*self._links.pop())
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._dropped:
            return
        text = data.replace("\r\n", "\n") if self._pre else _SPACES.sub(" ", data)
        if self._bullet and text.strip():
            self.parts.append(_LIST_ITEM)
            self._bullet = False
            text = text.lstrip()
        self.parts.append(text)

    def _break(self, tag: str) -> None:
        if tag in _PARAGRAPH_BLOCKS:
            self.parts.append("\n\n")
        elif tag in _LINE_BLOCKS:
            self.parts.append("\n")

    def _close_link(self, href: str, start: int) -> None:
        """Keep the address of a link whose text does not already show it."""
        text = " ".join("".join(self.parts[start:]).split())
        if not text or not href.lower().startswith(_LINK_SCHEMES):
            return
        if _comparable(href) != _comparable(text):
            self.parts.append(f" ({href})")


def _comparable(url: str) -> str:
    """A link's address as its text would usually show it."""
    text = url.strip().lower()
    for scheme in _LINK_SCHEMES:
        text = text.removeprefix(scheme)
    return text.rstrip("/")


def html_to_text(html: str) -> str:
    """The text a reader of ``html`` sees, one block to a line.

    Whitespace is collapsed within lines and at most one blank line is kept
    in a row. Input the parser cannot follow falls back to stripping tags.
    """
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
        text = "".join(collector.parts)
    except Exception:  # noqa: BLE001 - the stdlib parser asserts on odd markup
        text = _stripped_tags(html)
    return _tidy_lines(_CONTROL.sub("", text))


_DROPPED_BLOCK = re.compile(
    r"<(script|style|head|template|title)\b.*?(?:</\1\s*>|\Z)", re.I | re.S
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_BREAKING_TAG = re.compile(r"<(?:br|/?p|/?div|/?li|/?tr|/?h[1-6])\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]*>?")


def _stripped_tags(html: str) -> str:
    """The crude text of markup the parser gave up on: tags removed."""
    text = _COMMENT.sub("", _DROPPED_BLOCK.sub("", html))
    text = _BREAKING_TAG.sub("\n", text)
    return unescape(_TAG.sub(" ", text))


def _tidy_lines(text: str) -> str:
    """Each line's spaces collapsed, at most one blank line in a row."""
    lines: list[str] = []
    for raw in text.replace("\r", "\n").split("\n"):
        line = _LINE_SPACES.sub(" ", raw).strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


# --- replies ---------------------------------------------------------------

#: "On <date>, <someone> wrote:" and its common translations.
_ATTRIBUTIONS = (
    re.compile(r"^On\s.+\swrote\s*:$", re.I),
    re.compile(r"^Am\s.+\sschrieb\b.*:$", re.I),
    re.compile(r"^Le\s.+\sa\s+écrit\s*:$", re.I),
    re.compile(r"^El\s.+\sescribió\s*:$", re.I),
)
_ATTRIBUTION_START = re.compile(r"^(?:On|Am|Le|El)\s", re.I)
_ORIGINAL_MESSAGE = re.compile(
    r"^-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine"
    r"|Mensaje original)\s*-{2,}$",
    re.I,
)
_OUTLOOK_SEPARATOR = re.compile(r"^_{20,}$")
_OUTLOOK_FROM = re.compile(r"^\*?(?:From|Von|De)\s*:", re.I)
_OUTLOOK_DATE = re.compile(
    r"^\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha)\s*:", re.I
)
_OUTLOOK_TO = re.compile(r"^\*?(?:To|Subject|An|Betreff|À|Objet|Para|Asunto)\s*:", re.I)
_OUTLOOK_WINDOW = 3
_SIGNATURE = "-- "


def reply_text(text: str) -> str:
    """What the sender wrote above the quoted mail, without their signature.

    Cut at the first quote header (an attribution line, also wrapped over
    two lines; ``-----Original Message-----``; Outlook's separator or its
    ``From:``/``Sent:``/``To:`` block), then at a signature (a line ``-- ``),
    then a trailing run of ``>`` lines. A ``>`` run with the sender's own
    text after it is an inline answer and is kept. When nothing would be
    left, the whole text is returned (stripped): the sender's words are
    never dropped.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _quote_start(lines)
    kept = lines if start is None else lines[:start]
    kept = _without_trailing_quote(_without_signature(kept))
    while kept and not kept[0].strip():
        kept.pop(0)
    reply = "\n".join(kept).rstrip()
    return reply if reply.strip() else "\n".join(lines).strip()


def _quote_start(lines: list[str]) -> int | None:
    """The index of the first line that starts the quoted previous mail."""
    for index, line in enumerate(lines):
        if _starts_quote(lines, index, line.strip()):
            return index
    return None


def _starts_quote(lines: list[str], index: int, line: str) -> bool:
    if _is_attribution(line) or _is_wrapped_attribution(lines, index, line):
        return True
    if _ORIGINAL_MESSAGE.match(line) or _OUTLOOK_SEPARATOR.match(line):
        return True
    return _is_outlook_block(lines, index, line)


def _is_attribution(line: str) -> bool:
    return any(pattern.match(line) for pattern in _ATTRIBUTIONS)


def _is_wrapped_attribution(lines: list[str], index: int, line: str) -> bool:
    """An attribution its mail program wrapped onto a second line."""
    if index + 1 >= len(lines) or not _ATTRIBUTION_START.match(line):
        return False
    following = lines[index + 1].strip()
    if not following or _is_attribution(following):
        return False
    return _is_attribution(f"{line} {following}")


def _is_outlook_block(lines: list[str], index: int, line: str) -> bool:
    """``From:`` followed closely by ``Sent:`` (or ``Date:``) and ``To:``."""
    if not _OUTLOOK_FROM.match(line):
        return False
    window = [s for s in (x.strip() for x in lines[index + 1 :]) if s]
    window = window[:_OUTLOOK_WINDOW]
    return any(_OUTLOOK_DATE.match(s) for s in window) and any(
        _OUTLOOK_TO.match(s) for s in window
    )


def _without_signature(lines: list[str]) -> list[str]:
    """The lines above the signature delimiter ``-- `` (RFC 3676 4.3)."""
    return lines[: lines.index(_SIGNATURE)] if _SIGNATURE in lines else lines


def _without_trailing_quote(lines: list[str]) -> list[str]:
    """The lines above a run of ``>`` lines that ends the text."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and (
        lines[start - 1].lstrip().startswith(">") or not lines[start - 1].strip()
    ):
        start -= 1
    quoted = any(line.lstrip().startswith(">") for line in lines[start:end])
    return lines[:start] if quoted else lines


# --- subjects --------------------------------------------------------------

_TICKET_TAG = re.compile(r"\[#([0-9]{1,18})\]")


def subject_ticket_number(subject: str) -> int | None:
    """The number of the first ``[#N]`` in a subject (the tag our mail sets)."""
    match = _TICKET_TAG.search(subject or "")
    return int(match.group(1)) if match else None
