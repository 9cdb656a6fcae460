"""Configuration files shipped for production: the nginx reverse proxy in front of gunicorn."""
from __future__ import annotations

import math
from pathlib import Path
from string import Template

HERE = Path(__file__).parent
STATIC = HERE.parents[1] / "static"


def nginx_config(content_security_policy: str, listen: str = "80", upstream: str = "127.0.0.1:8000",
                 static_root: Path = STATIC, import_max_mb: float = 200) -> str:
    """The server block of deploy/nginx.conf for an app listening on `upstream`; static files get the app's
    `content_security_policy` too; the workspace's import uploads may reach `import_max_mb` (plus the form)."""
    return Template((HERE / "nginx.conf").read_text()).substitute(
        listen=listen, upstream=upstream, static_root=str(Path(static_root).resolve()),
        content_security_policy=content_security_policy, import_max_body=f"{math.ceil(import_max_mb) + 1}m")
