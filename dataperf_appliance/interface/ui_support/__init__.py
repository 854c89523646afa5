"""What the Streamlit pages (ui/) show and do, without Streamlit.

The pages are widgets and layout only; everything they compute lives here and
is unit-tested without a browser:

    form        the New benchmark form: fields from a track's template parameters,
                widget values -> parameters, live rendering and validation with
                errors by field, the user's own submission files, launching a run
    run_list    every run (disk, staging, S3, Airflow) as one table; headline scores
    run_detail  one run: manifest, results tables, plots, progress from Airflow, zip
    compare     runs side by side: differing parameters, metrics, curves
    dataset_upload  checking and storing an uploaded DataPerf dataset

Nothing here imports Streamlit or Airflow (Airflow only through the gateway).
"""
