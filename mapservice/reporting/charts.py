"""Charts of the report as SVG written on the server: no script, readable by a screen reader (role="img", a
<title> and a <desc> summing the figures up in words), printable, and each drawn from a table that the page
also shows (the full text alternative)."""
from __future__ import annotations

from html import escape

COLOURS = ("#1f4e9c", "#5a8f29", "#b34700")  # contrast ≥ 4.5:1 on white


def _number(value: float, unit: str) -> str:
    text = f"{value:,.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    return text.replace(",", " ").replace(".", ",") + unit


def _frame(n: str, title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-labelledby="chart-{n}-title chart-{n}-desc">'
            f'<title id="chart-{n}-title">{escape(title)}</title><desc id="chart-{n}-desc">{escape(desc)}</desc>'
            + "".join(body) + "</svg>")


def bars(ident: str, title: str, items: list[tuple[str, list[float | None]]], series: list[str], unit: str = "",
         maximum: float | None = None) -> str:
    """Horizontal bars: one group per item, one bar per series (e.g. 10, 30 and 60 km)."""
    label_w, bar_w, bar_h, gap = 260, 380, 14, 10
    values = [v for _, vs in items for v in vs if v is not None]
    top = maximum or max(values, default=0) or 1
    group_h = bar_h * len(series) + gap
    legend_h = 22 if len(series) > 1 else 0
    height = legend_h + group_h * len(items) + 10
    body = []
    if len(series) > 1:
        for i, name in enumerate(series):
            body.append(f'<rect x="{label_w + i * 110}" y="4" width="12" height="12" fill="{COLOURS[i]}"/>'
                        f'<text x="{label_w + i * 110 + 16}" y="15" font-size="12">{escape(name)}</text>')
    for row, (label, vs) in enumerate(items):
        y0 = legend_h + row * group_h
        body.append(f'<text x="{label_w - 6}" y="{y0 + group_h / 2}" font-size="12" text-anchor="end" '
                    f'dominant-baseline="middle">{escape(label)}</text>')
        for i, v in enumerate(vs):
            y = y0 + i * bar_h
            w = 0 if v is None else bar_w * v / top
            body.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{COLOURS[i]}"/>'
                        f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" font-size="11">'
                        f'{"–" if v is None else escape(_number(v, unit))}</text>')
    summary = "; ".join(
        f"{label} : " + ", ".join(f"{name} {'non disponible' if v is None else _number(v, unit)}"
                                  for name, v in zip(series, vs)) if len(series) > 1
        else f"{label} : {'non disponible' if vs[0] is None else _number(vs[0], unit)}"
        for label, vs in items)
    return _frame(ident, title, summary + ".", label_w + bar_w + 70, height, body)


def columns(ident: str, title: str, periods: list[str], series: list[tuple[str, list[float | None]]]) -> str:
    """The evolution over periods: one group of columns per period, one column per series."""
    left, plot_h, col_w, gap, bottom = 50, 160, 22, 24, 40
    values = [v for _, vs in series for v in vs if v is not None]
    top = max(values, default=0) or 1
    group_w = col_w * len(series) + gap
    width = max(left + group_w * max(len(periods), 1) + 20, 480)
    body = [f'<line x1="{left}" y1="{plot_h + 20}" x2="{width - 10}" y2="{plot_h + 20}" stroke="#555"/>']
    for i, (name, _) in enumerate(series):
        body.append(f'<rect x="{left + i * 150}" y="2" width="12" height="12" fill="{COLOURS[i]}"/>'
                    f'<text x="{left + i * 150 + 16}" y="13" font-size="12">{escape(name)}</text>')
    for p, period in enumerate(periods):
        x0 = left + p * group_w
        for i, (_, vs) in enumerate(series):
            v = vs[p]
            h = 0 if v is None else plot_h * v / top
            body.append(f'<rect x="{x0 + i * col_w}" y="{plot_h + 20 - h:.1f}" width="{col_w - 3}" height="{h:.1f}" '
                        f'fill="{COLOURS[i]}"/>')
        body.append(f'<text x="{x0 + group_w / 2 - gap / 2}" y="{plot_h + 36}" font-size="11" text-anchor="middle">'
                    f'{escape(period)}</text>')
    summary = "; ".join(f"{name} : " + ", ".join(
        f"{period} {'non disponible' if v is None else _number(v, '')}" for period, v in zip(periods, vs))
        for name, vs in series)
    return _frame(ident, title, summary + ".", width, plot_h + bottom + 10, body)
