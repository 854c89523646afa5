"""How much the browser may upload: the largest file a reader takes, and what uploads may hold in memory.

Streamlit keeps every uploaded file in the app's memory, for its session, until
the session ends or the file is removed. The limits here are the one place
that bounds that: Streamlit's ``server.maxUploadSize`` (set by ``ui/server.py``),
the login gate's budgets (``upload_budget.py``) and the form's uploaders
(``ui/views``) all follow them, and they follow the readers' own limits.
"""

from __future__ import annotations

from dataperf_appliance.config.types import MAX_TASKS
from dataperf_appliance.engine.user_files import MAX_SUBMISSION_BYTES, MAX_TRAINING_SET_BYTES

#: The largest dataset zip taken (packed; ui_support.dataset_upload refuses a larger one before writing it): the
#: largest pool a check reads (2**26 float32 embedding values, 256 MiB: datasets.dataperf_files.
#: MAX_PARQUET_VALUES) and as much again for its test sets and the rest. The browser's bytes are held in the
#: app's memory until they are checked, so this, not the 2 GiB a zip may unpack to, is what bounds an upload.
MAX_ARCHIVE_BYTES = 512 * 2**20
#: The largest file the form's "own submission files" uploader passes on: a debugging submission or a
#: selection training set, whichever reader takes more.
MAX_SUBMISSION_UPLOAD_BYTES = max(MAX_SUBMISSION_BYTES, MAX_TRAINING_SET_BYTES)
#: The largest file any reader takes (a dataset zip): Streamlit's server.maxUploadSize (ui/server.py).
MAX_UPLOAD_BYTES = max(MAX_SUBMISSION_UPLOAD_BYTES, MAX_ARCHIVE_BYTES)
#: The form-data framing around the file in an upload request (its headers and boundaries: a few hundred
#: bytes; Streamlit allows the same margin).
UPLOAD_FRAMING_BYTES = 2**20
#: The largest upload request (its Content-Length) the gate lets through.
MAX_UPLOAD_REQUEST_BYTES = MAX_UPLOAD_BYTES + UPLOAD_FRAMING_BYTES
#: What one Streamlit session's uploads may hold at once, received or being received: the largest request, so
#: a dataset zip fits, and a session cannot hold two of them.
SESSION_UPLOAD_BUDGET_BYTES = MAX_UPLOAD_REQUEST_BYTES
#: What all sessions' uploads may hold at once: two sessions' worth, so one tab's dataset zip does not block
#: another's, and 1 GiB is within the 4 GiB instance beside Airflow's 1.2 GiB and the app's own few hundred MiB.
TOTAL_UPLOAD_BUDGET_BYTES = 2 * SESSION_UPLOAD_BUDGET_BYTES
#: Files one uploader of the form takes at once: a submission and its timing file for each task of a setup of
#: the most tasks, which is also several methods' files for the 3 to 11 tasks of the usual setups. Each file
#: is read and checked at every change of the form.
MAX_FILES_PER_UPLOADER = 2 * MAX_TASKS
