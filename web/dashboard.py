"""The operator's console: GET /dashboard, a page of plain HTML, CSS and JS shipped with the
package (no build step, nothing fetched from elsewhere) that reads GET /cluster."""

from pathlib import Path

from faust.web import Request, Response, View

from streams.app import app

STATIC = Path(__file__).parent / "static"
ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}


@app.page("/")
class Home(View):
    async def get(self, request: Request) -> Response:
        return self.json({"location": "/dashboard"}, status=302,
                         headers={"Location": "/dashboard"})


@app.page("/dashboard")
class Dashboard(View):
    async def get(self, request: Request) -> Response:
        return self.html((STATIC / "dashboard.html").read_text(encoding="utf-8"),
                         headers={"Cache-Control": "no-cache"})


@app.page("/dashboard/{asset}")
class Asset(View):
    async def get(self, request: Request, asset: str) -> Response:
        if asset not in ASSETS:
            return self.error(404, f"no dashboard asset named {asset!r}", assets=sorted(ASSETS))
        return self.bytes((STATIC / asset).read_bytes(), content_type=ASSETS[asset],
                          headers={"Cache-Control": "no-cache"})
