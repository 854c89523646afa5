"""The app's server: the Streamlit app (app.py) behind the login gate (dataperf_appliance.login_gate).

    streamlit run ui/server.py --server.port $APPLIANCE_UI_PORT --server.headless true

`streamlit run` finds the `app` below and serves it with uvicorn: no request
reaches Streamlit, an upload or a session's websocket included, before the
password is given on the gate's login page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from dataperf_appliance.login_gate import LoginGate

app = st.App(str(Path(__file__).resolve().with_name("app.py")), middleware=[Middleware(LoginGate)])
