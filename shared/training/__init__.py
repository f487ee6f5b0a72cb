"""Training + evaluation entry point, run as an Azure ML command job or a local subprocess.

    python -m shared.training --manifest PATH --data-dir DIR --config PATH --output DIR
                              [--champion DIR] [--run-id ID]

Importing this package is cheap: scikit-learn, pandas and mlflow load only inside `shared.training.run`.
"""
