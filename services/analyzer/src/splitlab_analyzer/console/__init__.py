"""The web console under ``/ui``: experiments, their results over time, and analyses of
uploaded files. Server-rendered (Jinja2, autoescaped), charts as server-drawn SVG, every asset
served by the analyzer itself; see docs/console.md."""
