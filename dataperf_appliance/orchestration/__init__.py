"""What talks to Airflow: the gateway (the package's only caller of Airflow) and what Airflow loads by name (the executor, a Celery worker's name)."""
