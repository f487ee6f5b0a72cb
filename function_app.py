"""The Function App: wiring only. Every function lives in a Blueprint under functions/."""

import azure.functions as func

from functions import api, data, drift, notify, quality, reconcile, release, training

app = func.FunctionApp()
for module in (data, training, release, drift, quality, reconcile, notify, api):
    app.register_functions(module.bp)
