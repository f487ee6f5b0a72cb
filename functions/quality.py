import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_labels_landed")
@bp.event_grid_trigger(arg_name="event")
def on_labels_landed(event: func.EventGridEvent) -> None:
    from shared.domain.messages import BlobCreated
    from shared.handlers.intake import admit
    from shared.handlers.labels import on_labels_landed as handle_labels_landed

    d = deps()
    if message := admit(parse(event), (BlobCreated,), d, "on_labels_landed"):
        handle_labels_landed(message, d)


@bp.function_name("quality_check")
@bp.timer_trigger(schedule="%MLOPS_QUALITY_SCHEDULE%", arg_name="timer")
def quality_check(timer: func.TimerRequest) -> None:
    from shared.handlers.quality import check_quality

    check_quality(deps())
