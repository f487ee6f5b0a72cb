import json
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import azure.functions as func

from functions._trigger import deps, json_response

if TYPE_CHECKING:
    from shared.domain.identity import Refused

log = logging.getLogger(__name__)
MAX_DECISION_BYTES = 16 * 1024
MAX_COMMENT = 1000  # characters of an approver's comment kept in the audit log

bp = func.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)


@bp.function_name("status")
@bp.route(route="status", methods=["GET"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    from shared.handlers import queries

    return json_response(queries.status(deps()))


@bp.function_name("lineage")
@bp.route(route="models/{name}/{version}/lineage", methods=["GET"])
def lineage(req: func.HttpRequest) -> func.HttpResponse:
    from shared.handlers import queries

    found = queries.lineage(req.route_params["name"], req.route_params["version"], deps())
    if found is None:
        return json_response({"error": "no such model version"}, status=404)
    return json_response(found)


@bp.function_name("release_review")
@bp.route(route="releases/{release_id}", methods=["GET"])
def release_review(req: func.HttpRequest) -> func.HttpResponse:
    """The release and its model's lineage: a page to review and decide it for a browser, JSON otherwise."""
    from shared.domain.review_assets import CONTENT_SECURITY_POLICY
    from shared.domain.review_page import prefers_html, render
    from shared.handlers.queries import release_review as review

    d = deps()
    found = review(req.route_params.get("release_id", ""), d)
    if found is None:
        response = json_response({"error": "no such release"}, status=404)
    elif prefers_html(req.headers.get("accept")):
        page = render(found["release"], found["lineage"], local=d.settings.backend == "local")
        response = func.HttpResponse(page, status_code=200, mimetype="text/html", charset="utf-8")
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"  # the page's address may carry the function key
        response.headers["X-Frame-Options"] = "DENY"
    else:
        response = json_response(found)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Vary"] = "Accept"
    return response


@bp.function_name("history")
@bp.route(route="history", methods=["GET"])
def history(req: func.HttpRequest) -> func.HttpResponse:
    """What served production when (`?at=TIME`: what served then; `?model=NAME`: another model's)."""
    from datetime import UTC

    from shared.domain.moments import BadMoment, parse_moment
    from shared.handlers import queries

    d = deps()
    at, model = req.params.get("at"), req.params.get("model")
    if model is not None and not (0 < len(model) <= 255 and model.isprintable()):
        return _bad_query("`model` must be a model name (1 to 255 printable characters)")
    try:
        moment = None if at is None else parse_moment(at, d.clock(), UTC)
    except BadMoment as error:
        return _bad_query(str(error))
    return json_response(queries.history(d, moment, model))


def _bad_query(reason: str) -> func.HttpResponse:
    """A read-only query that asks for something that is no question: a 400 with the reason, logged (not an
    audit entry: a read decides nothing)."""
    log.warning("query refused", extra={"reason": reason})
    return json_response({"error": reason}, status=400)


@bp.function_name("approve")
@bp.route(route="releases/{release_id}/approve", methods=["POST"])
def approve(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, "approve")


@bp.function_name("reject")
@bp.route(route="releases/{release_id}/reject", methods=["POST"])
def reject(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, "reject")


@bp.function_name("rollback")
@bp.route(route="releases/{release_id}/rollback", methods=["POST"])
def rollback(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, "rollback")


def _decide(req: func.HttpRequest, decision: str) -> func.HttpResponse:
    from shared.domain.identity import Refused
    from shared.handlers.callers import identify
    from shared.handlers.release import decide_approval, roll_back

    d = deps()
    release = req.route_params["release_id"]
    body = _body(req)
    if isinstance(body, func.HttpResponse):
        return body
    found = identify(req.headers, d, d.settings.approvers.approver_role, platform_auth=_platform_auth())
    if isinstance(found, Refused):
        d.audit.record(decision, "approval.refused", release, reason=found.reason)
        return _refused(found)
    who = found.name
    comment = str(body.get("comment", ""))[:MAX_COMMENT] if isinstance(body, dict) else ""
    if decision == "rollback":
        code, message = roll_back(release, who, comment, d)
    else:
        code, message = decide_approval(release, decision == "approve", who, comment, d)
    if code != 200:
        d.audit.record(decision, "approval.refused", release, approver=who, reason=message)
    return json_response({"ok": code == 200, "message": message}, status=code)


@bp.function_name("retry_stuck")
@bp.route(route="stuck/retry", methods=["POST"])
def retry_stuck(req: func.HttpRequest) -> func.HttpResponse:
    """Hand a record set aside as stuck back to the handlers (body: {"key": "releases/..."}), as an approver."""
    from shared.domain.identity import Refused
    from shared.handlers import stuck
    from shared.handlers.callers import identify

    d = deps()
    body = _body(req)
    if isinstance(body, func.HttpResponse):
        return body
    path = body.get("key") if isinstance(body, dict) else None
    found = identify(req.headers, d, d.settings.approvers.approver_role, platform_auth=_platform_auth())
    if isinstance(found, Refused):
        d.audit.record("retry_stuck", "retry.refused", str(path)[:512], reason=found.reason)
        return _refused(found)
    code, message = stuck.retry(path, found.name, d)
    return json_response({"ok": code == 200, "message": message}, status=code)


def _body(req: func.HttpRequest) -> Any:
    """The JSON body of a decision, or the 400 that says why there is none."""
    raw = req.get_body() or b"{}"
    if len(raw) > MAX_DECISION_BYTES:
        return json_response({"error": f"the body is over {MAX_DECISION_BYTES} bytes"}, status=400)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deeply
        return json_response({"error": "body must be JSON"}, status=400)


@bp.function_name("retrain")
@bp.route(route="retrain", methods=["POST"])
def retrain(req: func.HttpRequest) -> func.HttpResponse:
    return _retrain(req)


def _retrain(req: func.HttpRequest) -> func.HttpResponse:
    """Ask for a run (cause `manual`, or `code` with a code version); `reconcile` starts it as for any cause."""
    from shared.domain.identity import Refused
    from shared.domain.retrain import BadRetrain, request_id, retrain_command
    from shared.handlers import training_requests
    from shared.handlers.callers import identify

    d = deps()
    found = identify(
        req.headers, d, d.settings.approvers.retrain_role, applications=True, platform_auth=_platform_auth()
    )
    if isinstance(found, Refused):
        d.audit.record("retrain", "retrain.refused", "retrain", reason=found.reason)
        return _refused(found)
    who = found.name
    try:
        command = retrain_command(req.get_body(), who, request_id(req.headers, str(uuid.uuid4())))
    except BadRetrain as error:
        d.audit.record("retrain", "retrain.rejected", "retrain", reason=str(error), requested_by=who[:256])
        return json_response({"error": str(error)}, status=400)
    return json_response(training_requests.retrain(command, d, "retrain"), status=202)


def _platform_auth() -> bool:
    """App Service authentication is on: the platform then strips any principal header a client sends."""
    return os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() == "true"


def _refused(refused: "Refused") -> func.HttpResponse:
    response = json_response({"error": refused.reason}, status=refused.status)
    if refused.status == 401:  # RFC 6750: the scheme that would prove who is calling
        response.headers["WWW-Authenticate"] = "Bearer"
    elif refused.status == 503:
        response.headers["Retry-After"] = "30"
    return response
