import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_run_completed")
@bp.event_grid_trigger(arg_name="event")
def on_run_completed(event: func.EventGridEvent) -> None:
    from shared.domain.messages import MonitorAlert, RunCompleted, RunStatusChanged
    from shared.handlers.intake import admit
    from shared.handlers.training import on_run_completed as handle_run_completed

    d = deps()
    # A monitor's alert is a status change of a run that is never ours; on_monitor_alert acts on it.
    message = admit(parse(event), (RunCompleted, RunStatusChanged, MonitorAlert), d, "on_run_completed")
    if isinstance(message, RunCompleted):  # a non-terminal status change needs nothing
        handle_run_completed(message, d)


@bp.function_name("scheduled_retrain")
@bp.timer_trigger(schedule="%MLOPS_RETRAIN_SCHEDULE%", arg_name="timer")
def scheduled_retrain(timer: func.TimerRequest) -> None:
    from shared.handlers import reconcile as reconciliation

    d = deps()
    reconciliation.scheduled_retrain(d, tick_id=f"schedule-{d.clock().strftime('%Y%m%dT%H%M%S')}")
