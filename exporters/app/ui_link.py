"""A "Provenance" link inside MLflow's own UI, without forking MLflow's front end.

MLflow's UI is one ``index.html`` that loads a React app; the ``prov`` apps add one
``<script>`` tag to that page as the server sends it. The script (``static/mlflow-link.js``)
puts a "Provenance" entry in MLflow's sidebar beside "Docs" and, on a run's page, a
"Provenance timeline" link beside the run's name. It looks for MLflow's elements by what they
are (the sidebar's documentation link, the run header's ``data-testid``): when a new MLflow
moves them, the links are simply absent and MLflow's page works as before.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, request, send_from_directory, url_for
from markupsafe import escape

from exporters.app.openapi import describe
from exporters.compat import mlflow_ui_endpoint

STATIC = Path(__file__).parent / "static"
SCRIPT = "mlflow-link.js"
ui_link = Blueprint("prov_ui_link", __name__, url_prefix="/prov")


@ui_link.get("/ui-link/" + SCRIPT)
@describe("/prov/ui-link/" + SCRIPT, "The script that adds the Provenance links to MLflow's "
          "own UI page", errors=(401,), media_type="text/javascript")
def script() -> Response:
    """The script, served by the ``prov`` app itself (no CDN, nothing outside the server)."""
    return send_from_directory(STATIC, SCRIPT, mimetype="text/javascript")


def script_tag() -> str:
    """The tag added to MLflow's page: where the script is and where the pages are."""
    source = escape(url_for("prov_ui_link.script"))
    home = escape(url_for("prov_pages.experiments"))
    return f'<script src="{source}" data-prov-home="{home}" defer></script>'


def always_send_the_page() -> None:
    """A browser that cached MLflow's page before this app was installed revalidates it with
    the file's ETag or date and would get a 304 and keep the page without the script: for
    MLflow's page alone, the request's validators are dropped."""
    if request.endpoint == mlflow_ui_endpoint():
        for validator in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE"):
            request.environ.pop(validator, None)


def add_script(response: Response) -> Response:
    """MLflow's UI page, with the script before ``</body>``; every other response as it is.

    The page's ETag and date are MLflow's file's, so they go with the change."""
    if (request.endpoint != mlflow_ui_endpoint() or response.status_code != 200
            or response.mimetype != "text/html"):
        return response
    response.direct_passthrough = False
    page = response.get_data(as_text=True)
    if "</body>" not in page:
        return response
    response.set_data(page.replace("</body>", f"{script_tag()}</body>", 1))
    response.headers.pop("ETag", None)
    response.headers.pop("Last-Modified", None)
    response.headers["Cache-Control"] = "no-cache"
    return response


def attach(app: Flask) -> None:
    """Serve the script and add it to MLflow's UI page."""
    app.register_blueprint(ui_link)
    app.before_request(always_send_the_page)
    app.after_request(add_script)
