"""One scoring process per local deployment: an MLflow model behind Azure ML's MLflow request format.

    python -m shared.host.endpoint.scoring --model DIR --port N [--host 127.0.0.1] [--home MLOPS_HOME]

The model is loaded before the socket is bound, so "connection refused" means "still starting" and a 200 on
`/health` means "ready": the router relies on exactly that to report a deployment Creating / Succeeded.

With `--home`, a model whose requirements.txt asks for packages this interpreter lacks (a team's LightGBM) is
served from an environment built from that file under `MLOPS_HOME/envs/` (`environment`): the process builds
it or finds it cached, then replaces itself with the same command on that environment's python (same pid), so
while it builds the deployment is still Creating, and a build that fails fails the deployment with pip's reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger("shared.host.endpoint.scoring")

# Azure ML rejects bodies above ~100 MB; refusing early keeps a bad client from exhausting local memory.
MAX_BODY_BYTES = 100 * 1024 * 1024
SHUTDOWN_POLL_SECONDS = 0.1
# A model's environment is built once (then cached); building it longer than this fails the deployment.
ENVIRONMENT_TIMEOUT_SECONDS = 900.0


class BadRequest(ValueError):
    """The request cannot be scored as sent; the client must change it (HTTP 400)."""


def parse_input_data(body: bytes) -> Any:
    """Build the DataFrame from `{"input_data": {"columns": [...], "index": [...], "data": [[...]]}}`."""
    import pandas as pd

    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(request, dict) or "input_data" not in request:
        raise BadRequest('expected a JSON object with "input_data"')
    input_data = request["input_data"]
    if not isinstance(input_data, dict):
        raise BadRequest(
            '"input_data" must be an object with "columns" and "data" (pandas split orientation)'
        )
    columns = input_data.get("columns")
    data = input_data.get("data")
    if not isinstance(columns, list) or not isinstance(data, list):
        raise BadRequest('"input_data" needs "columns" (a list) and "data" (a list of rows)')
    if not data:
        raise BadRequest('"input_data.data" has no rows to score')
    index = input_data.get("index")
    if index is not None and not isinstance(index, list):
        raise BadRequest('"input_data.index" must be a list when given')
    try:
        return pd.DataFrame(data=data, columns=columns, index=index)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f'"input_data" does not form a table: {exc}') from exc


def to_json_predictions(predictions: Any) -> Any:
    """Shape predictions as Azure ML's MLflow deployments answer: a JSON list (records for DataFrames)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return json.loads(predictions.to_json(orient="records"))
    if isinstance(predictions, pd.Series):
        return json.loads(predictions.to_json(orient="values"))
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, np.generic):
        return [predictions.item()]
    return predictions


def make_handler(model: Any) -> type[BaseHTTPRequestHandler]:
    class ScoringHandler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps router connections alive; every response therefore sends Content-Length.
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/health":
                self._send(200, {"status": "ok", "pid": os.getpid()})
            else:
                self._send(404, {"error": f"no route for GET {self.path}"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/score":
                self._send(404, {"error": f"no route for POST {self.path}"})
                return
            try:
                frame = parse_input_data(self._read_body())
            except BadRequest as exc:
                self._send(400, {"error": str(exc)})
                return
            try:
                predictions = to_json_predictions(model.predict(frame))
                body = json.dumps(predictions).encode()
            except Exception as exc:  # the model's failure is the caller's answer, never the process's end
                logger.exception("scoring failed")
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._send_bytes(200, body)

        def _read_body(self) -> bytes:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError as exc:
                raise BadRequest("invalid Content-Length") from exc
            if length <= 0:
                raise BadRequest("empty body")
            if length > MAX_BODY_BYTES:
                raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
            return self.rfile.read(length)

        def _send(self, status: int, payload: Any) -> None:
            self._send_bytes(status, json.dumps(payload).encode())

        def _send_bytes(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return ScoringHandler


def serve(model_dir: str, host: str, port: int) -> None:
    server: ThreadingHTTPServer | None = None

    def on_sigterm(signum: int, frame: Any) -> None:
        if server is None:
            # Still loading: nothing to drain, leave at once.
            raise SystemExit(0)
        # shutdown() waits for serve_forever to return, which runs in this (main) thread: call it elsewhere.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)

    import mlflow.pyfunc

    logger.info("loading model from %s", model_dir)
    try:
        if not os.path.isdir(model_dir):
            # MLflow would answer "No such artifact", which does not say what is wrong.
            raise FileNotFoundError(f"no model folder at {model_dir}")
        model = mlflow.pyfunc.load_model(model_dir)
    except Exception as exc:
        logger.exception("model load failed")
        # The last log line is what the router reports as the deployment's failure: make it the cause.
        logger.error("could not load the model from %s: %s: %s", model_dir, type(exc).__name__, exc)
        raise SystemExit(1) from exc
    server = ThreadingHTTPServer((host, port), make_handler(model))
    logger.info("serving %s on http://%s:%d/score (pid %d)", model_dir, host, port, os.getpid())
    try:
        # shutdown() waits for the loop to look at its flag: every 0.1 s, so a stop is quick.
        server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)
    finally:
        server.server_close()
        logger.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="the MLflow model folder (the one holding MLmodel)")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--home", default=None, help="MLOPS_HOME, where models' environments are built")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.home:
        _in_the_models_environment(args.model, args.home, args.host, args.port)
    serve(args.model, args.host, args.port)
    return 0


def _in_the_models_environment(model_dir: str, home: str, host: str, port: int) -> None:
    """Return when this interpreter can serve the model; else replace this process with the scorer on the
    python of the model's environment (built first if need be), or exit with why it cannot be built."""
    from pathlib import Path

    from shared.adapters.local.environments import EnvironmentBuildError
    from shared.host.endpoint.environment import model_environment, unmet_requirements

    try:
        unmet = unmet_requirements(Path(model_dir))
        if not unmet:
            return
        logger.info("the model needs %s: serving it from its own environment", ", ".join(unmet))
        python = model_environment(Path(model_dir), Path(home), ENVIRONMENT_TIMEOUT_SECONDS)
    except EnvironmentBuildError as exc:
        if exc.log_tail:
            logger.error("the build's last lines:\n%s", exc.log_tail)
        # The last log line is what the router reports as the deployment's failure: make it the cause.
        logger.error("could not build the environment of the model in %s: %s", model_dir, exc.reason)
        raise SystemExit(1) from None
    logger.info("serving with %s", python)
    sys.stderr.flush()
    command = [str(python), "-m", "shared.host.endpoint.scoring", "--model", model_dir]
    os.execv(str(python), [*command, "--port", str(port), "--host", host])


if __name__ == "__main__":
    sys.exit(main())
