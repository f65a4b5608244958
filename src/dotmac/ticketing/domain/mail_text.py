"""The words of an e-mail: HTML as plain text, a reply without its quote.

Pure. The stored text of an inbound message is plain text, so it is safe
to show wherever text is escaped: markup, scripts and styles never survive
:func:`html_to_text`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROPPED = frozenset({"script", "style", "head", "template", "title", "noscript"})
_BLOCKS = frozenset(
    {
        "p", "div", "br", "li", "tr", "table", "blockquote", "section",
        "article", "header", "footer", "ul", "ol", "pre", "hr",
        "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping = 0
        self._link: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self._link = (
                href if href.startswith(("http://", "https://", "mailto:")) else None
            )
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self._dropping = max(0, self._dropping - 1)
        elif tag in _BLOCKS and tag != "li":
            self.parts.append("\n")
        elif tag == "a" and self._link is not None:
            text = "".join(self._link_text).strip()
            target = self._link.removeprefix("mailto:")
            if target and target != text:
                self.parts.append(f" ({self._link})")
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        self.parts.append(data)
        if self._link is not None:
            self._link_text.append(data)


def html_to_text(html: str) -> str:
    """The text a reader sees of ``html``: no markup, no scripts, no styles."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; anything else: drop the tags
        return tidy(re.sub(r"<[^>]*>", " ", html))
    return tidy("".join(parser.parts))


def tidy(text: str) -> str:
    """Whitespace collapsed within lines, at most one blank line in a row."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip()


# -- the reply above the quote -------------------------------------------------------

_QUOTE_HEADERS = (
    re.compile(r"^\s*On\b.*\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Am\b.*\bschrieb\b.*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Le\b.*\ba écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*El\b.*\bescribió:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{20,}\s*$"),
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De):\*?\s", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\*?(Sent|Date|Gesendet|Envoyé|To|An|À|Subject|Betreff|Objet):\*?\s",
    re.IGNORECASE,
)


def reply_text(text: str) -> str:
    """What the sender wrote above the mail they answer (and its signature).

    The whole text when cutting would leave nothing: nothing written is lost.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        joined = f"{line} {lines[index + 1]}" if index + 1 < len(lines) else line
        if any(p.match(line) for p in _QUOTE_HEADERS) or (
            line.strip().lower().startswith("on ")
            and any(p.match(joined) for p in _QUOTE_HEADERS[:1])
        ):
            cut = index
            break
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[index + 1 : index + 4]
        ):
            cut = index
            break
        if line.startswith(">") and all(
            not rest.strip() or rest.startswith(">") for rest in lines[index:]
        ):
            cut = index
            break
    above = lines[:cut]
    if "-- " in above:
        above = above[: above.index("-- ")]
    reply = "\n".join(above).strip()
    return reply or text.strip()


_TOKEN = re.compile(r"\[#([0-9]{1,18})\]")


def subject_ticket_number(subject: str) -> int | None:
    """N of the first ``[#N]`` in a subject."""
    match = _TOKEN.search(subject or "")
    return int(match.group(1)) if match else None
