"""Azure Functions Blueprints: one module per concern, each function a few lines of parse-call-return.

Indexing (`import function_app`, every cold start, every function) imports `azure.functions` and these modules
only: each function imports the handlers it calls when it first runs, so a worker pays for the code of the
functions it runs and no other (`bench/first_invocation.py` measures both).
"""
