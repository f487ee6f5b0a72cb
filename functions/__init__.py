"""Azure Functions Blueprints: one module per concern, each function a few lines of parse-call-return."""
