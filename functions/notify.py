import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_notify")
@bp.event_grid_trigger(arg_name="event")
def on_notify(event: func.EventGridEvent) -> None:
    from shared.domain.messages import Announcement, DriftDetected
    from shared.handlers import notify
    from shared.handlers.intake import admit

    d = deps()
    if message := admit(parse(event), (Announcement, DriftDetected), d, "on_notify"):
        notify.on_notify(message.envelope, d)
