"""The Function App: wiring only. Every function lives in a Blueprint under functions/."""

import azure.functions as func

from functions import api, data, drift, reconcile, release, training

app = func.FunctionApp()
for module in (data, training, release, drift, reconcile, api):
    app.register_functions(module.bp)
