"""Only http(s):, tel: and mailto: links ever leave the service as links."""
import pytest

from mapservice.errors import InvalidParameter
from mapservice.links import checked_link, safe_link


@pytest.mark.parametrize("url", ["https://www.onisep.fr/", "http://lycee.example.fr/a?b=c", "tel:+33123456789",
                                 "mailto:cio@example.fr", "HTTPS://EXAMPLE.FR"])
def test_web_phone_and_mail_links_are_kept(url):
    assert safe_link(url) == url
    assert checked_link(f"  {url} ", "website") == url


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                 "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
                                 "vbscript:msgbox", "//evil.example/", "www.example.fr", "https://", "tel:",
                                 "file:///etc/passwd"])
def test_anything_else_is_refused_on_save_and_dropped_on_render(url):
    assert safe_link(url) is None
    with pytest.raises(InvalidParameter) as refused:
        checked_link(url, "website")
    assert refused.value.extra["parameter"] == "website"


def test_an_empty_link_is_no_link():
    assert checked_link("  ", "website") is None and checked_link(None, "website") is None
    assert safe_link("") is None and safe_link(None) is None
