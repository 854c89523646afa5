"""The two official DataPerf vision evaluators' folders: evaluate one as they would, export a run as one.

`evaluate.evaluate_folder` writes the official result files of a folder in
either official layout (config/official.py says which); `export.export_run`
writes a finished run as folders the official evaluators read unchanged.
docs/official-evaluators.md lists every difference from the official code.
"""
