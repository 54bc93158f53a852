"""What the runner hands its work to around the steps: experiment tracking (MLflow).

Imported by the doit adapter only; MLflow itself is imported only when a tracked step has run.
"""
