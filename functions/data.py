import azure.functions as func

from functions._trigger import deps, parse

bp = func.Blueprint()


@bp.function_name("on_data_landed")
@bp.event_grid_trigger(arg_name="event")
def on_data_landed(event: func.EventGridEvent) -> None:
    from shared.domain.messages import BlobCreated
    from shared.handlers.data import on_blob_created
    from shared.handlers.intake import admit

    d = deps()
    if message := admit(parse(event), (BlobCreated,), d, "on_data_landed"):
        on_blob_created(message, d)


@bp.function_name("on_data_deleted")
@bp.event_grid_trigger(arg_name="event")
def on_data_deleted(event: func.EventGridEvent) -> None:
    from shared.domain.messages import BlobDeleted
    from shared.handlers.intake import admit
    from shared.handlers.retractions import on_blob_deleted

    d = deps()
    if message := admit(parse(event), (BlobDeleted,), d, "on_data_deleted"):
        on_blob_deleted(message, d)
