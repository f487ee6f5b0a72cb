import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_drift_detected")
@bp.event_grid_trigger(arg_name="event")
def on_drift_detected(event: func.EventGridEvent) -> None:
    from shared.domain.messages import DriftDetected
    from shared.handlers import drift as drift_handlers
    from shared.handlers.intake import admit

    d = deps()
    if message := admit(parse(event), (DriftDetected,), d, "on_drift_detected"):
        drift_handlers.on_drift_detected(message, d)


@bp.function_name("on_monitor_alert")
@bp.event_grid_trigger(arg_name="event")
def on_monitor_alert(event: func.EventGridEvent) -> None:
    from shared.domain.messages import MonitorAlert
    from shared.handlers import drift as drift_handlers
    from shared.handlers.intake import admit

    d = deps()
    if message := admit(parse(event), (MonitorAlert,), d, "on_monitor_alert"):
        drift_handlers.on_monitor_alert(message, d)


@bp.function_name("drift_check")
@bp.timer_trigger(schedule="%MLOPS_DRIFT_SCHEDULE%", arg_name="timer")
def drift_check(timer: func.TimerRequest) -> None:
    from shared.handlers.drift_check import check_drift

    check_drift(deps())
