"""The app's server: the Streamlit app (app.py) behind the login gate (dataperf_appliance.interface.login_gate).

    streamlit run ui/server.py --server.port $APPLIANCE_UI_PORT --server.headless true

`streamlit run` finds the `app` below and serves it with uvicorn: no request
reaches Streamlit, an upload or a session's websocket included, before the
password is given on the gate's login page. After it, the gate's upload budget
bounds what Streamlit holds in uploaded files (dataperf_appliance.interface.upload_budget,
counting Streamlit's files through streamlit_uploads.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from streamlit import config

from dataperf_appliance.interface.login_gate import LoginGate
from dataperf_appliance.interface.upload_budget import UploadBudget
from dataperf_appliance.engine.upload_limits import MAX_UPLOAD_BYTES

UI_DIR = Path(__file__).resolve().parent
if str(UI_DIR) not in sys.path:
    sys.path.insert(0, str(UI_DIR))

from streamlit_uploads import StreamlitUploads  # noqa: E402


def set_upload_limit() -> None:
    """Streamlit's per-file limit (MiB, which it calls MB) is the largest file a reader takes. Set here, again at
    every parse of config.toml (which would reset it), rather than in config.toml or a flag: the readers' limits
    are Python constants."""
    config.set_option("server.maxUploadSize", math.ceil(MAX_UPLOAD_BYTES / 2**20))


set_upload_limit()
config.on_config_parsed(set_upload_limit, force_connect=True)

app = st.App(str(UI_DIR / "app.py"),
             middleware=[Middleware(LoginGate, uploads=UploadBudget(StreamlitUploads()))])
