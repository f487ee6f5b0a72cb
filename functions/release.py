import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_model_registered")
@bp.event_grid_trigger(arg_name="event")
def on_model_registered(event: func.EventGridEvent) -> None:
    from shared.domain.messages import ModelRegistered
    from shared.handlers.intake import admit
    from shared.handlers.release import on_model_registered as handle_model_registered

    d = deps()
    if message := admit(parse(event), (ModelRegistered,), d, "on_model_registered"):
        handle_model_registered(message, d)
