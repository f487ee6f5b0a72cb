import azure.functions as func

from functions._trigger import deps

bp = func.Blueprint()


@bp.function_name("reconcile")
@bp.timer_trigger(schedule="%MLOPS_RECONCILE_SCHEDULE%", arg_name="timer")
def reconcile(timer: func.TimerRequest) -> None:
    from shared.handlers import reconcile as reconciliation

    reconciliation.reconcile(deps())


@bp.function_name("retention")
@bp.timer_trigger(schedule="%MLOPS_RETENTION_SCHEDULE%", arg_name="timer")
def retention(timer: func.TimerRequest) -> None:
    from shared.handlers.retention import apply_retention

    apply_retention(deps())
