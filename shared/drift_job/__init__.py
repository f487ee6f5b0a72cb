"""The drift check's job: `python -m shared.drift_job`, run in the training environment (an Azure ML command
job, or a local process), where its statistics libraries are (scipy, scikit-learn, pyarrow: the Function App
carries none of them). The app's timer submits it (shared/handlers/drift_check.py) and its completion event, as a
training run's, brings the outcome back to the app, which records it and publishes the drift.

`check` is the check; `inputs` what it compares; `__main__` the entry point, which builds the blob store from
the same settings the app has and loads the champion to score the reference sample."""
