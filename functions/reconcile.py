import azure.functions as func

from shared.bootstrap import deps
from shared.handlers import reconcile as reconciliation
from shared.handlers.retention import apply_retention

bp = func.Blueprint()


@bp.function_name("reconcile")
@bp.timer_trigger(schedule="%MLOPS_RECONCILE_SCHEDULE%", arg_name="timer")
def reconcile(timer: func.TimerRequest) -> None:
    reconciliation.reconcile(deps())


@bp.function_name("retention")
@bp.timer_trigger(schedule="%MLOPS_RETENTION_SCHEDULE%", arg_name="timer")
def retention(timer: func.TimerRequest) -> None:
    apply_retention(deps())
