"""The bare-Flask peer of the HTTP floor: the same gunicorn, a Flask app with one route answering what
/healthz answers, and none of mapservice's per-request work (access log, request id, metrics, security
headers, rate limits, sessions). `python -m gunicorn bare_flask:app` from bench/."""
from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def alive():
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
