import json

import azure.functions as func

from functions._trigger import json_response
from shared.bootstrap import deps
from shared.handlers import queries
from shared.handlers.release import decide_approval

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


@bp.function_name("status")
@bp.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(queries.status(deps()))


@bp.function_name("lineage")
@bp.route(route="models/{name}/{version}/lineage", methods=["GET"])
def lineage(req: func.HttpRequest) -> func.HttpResponse:
    found = queries.lineage(req.route_params["name"], req.route_params["version"], deps())
    if found is None:
        return json_response({"error": "no such model version"}, status=404)
    return json_response(found)


@bp.function_name("approve")
@bp.route(route="releases/{release_id}/approve", methods=["POST"])
def approve(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, approved=True)


@bp.function_name("reject")
@bp.route(route="releases/{release_id}/reject", methods=["POST"])
def reject(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, approved=False)


def _decide(req: func.HttpRequest, approved: bool) -> func.HttpResponse:
    try:
        body = json.loads(req.get_body() or b"{}")
    except json.JSONDecodeError:
        return json_response({"error": "body must be JSON"}, status=400)
    approver = req.headers.get("x-mlops-approver") or body.get("approver", "")
    if not approver:
        return json_response({"error": "an approver identity is required"}, status=403)
    done, message = decide_approval(
        req.route_params["release_id"], approved, approver, body.get("comment", ""), deps()
    )
    return json_response({"ok": done, "message": message}, status=200 if done else 409)
