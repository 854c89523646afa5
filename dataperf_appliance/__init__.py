"""DataPerf Appliance: benchmark training data the DataPerf way.

The engine (this package) knows nothing of Airflow or Streamlit: it runs from
the CLI, a test or a DAG task alike.
"""

__version__ = "0.1.0"
