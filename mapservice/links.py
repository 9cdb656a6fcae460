"""Links that come from curated or imported data (a site's website, a platform's chat...). Only http(s):,
tel: and mailto: ever become links: a `javascript:` or `data:` URL is refused when saved or imported
(`checked_link`), and dropped again where it is shown (`safe_link`), for rows written before the rule."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import InvalidParameter

LINK_SCHEMES = ("http", "https", "tel", "mailto")
# Browsers ignore ASCII control characters and spaces inside a scheme ("java\tscript:"): none is accepted.
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def link_scheme(url: str) -> str | None:
    """The scheme of `url` in lower case, or None when it has none."""
    scheme = urlsplit(url.strip()).scheme
    return scheme.lower() or None


# Most links are plain web addresses: recognised without parsing them (an import checks thousands).
_WEB_ADDRESS = re.compile(r"https?://[^/?#]", re.IGNORECASE)


def is_safe_link(url: str | None) -> bool:
    if not url or _CONTROL.search(url.strip()):
        return False
    if _WEB_ADDRESS.match(url.strip()):
        return True
    scheme = link_scheme(url)
    if scheme in ("http", "https"):
        return bool(urlsplit(url.strip()).netloc)
    return scheme in ("tel", "mailto") and len(url.strip()) > len(scheme) + 1


def safe_link(url: str | None) -> str | None:
    """`url` when it may be shown as a link, else None."""
    return url.strip() if is_safe_link(url) else None


def checked_link(url: str | None, field: str) -> str | None:
    """A link about to be saved: empty is None; anything but an http(s), tel or mailto URL is refused."""
    if url is None or not url.strip():
        return None
    if not is_safe_link(url):
        raise InvalidParameter(
            f"'{field}' doit être une adresse web (https://…), un numéro (tel:…) ou un e-mail (mailto:…) ; "
            f"reçu « {url.strip()[:80]} ».", parameter=field)
    return url.strip()
