"""The uploaded files Streamlit holds in this process: what the login gate's upload budget counts and drops.

dataperf_appliance.interface.upload_budget.HeldUploads over Streamlit's runtime (the
package imports no Streamlit): its ``MemoryUploadedFileManager`` (what
``st.App`` makes), read through its ``file_storage`` and freed with its
``remove_session_files``. When Streamlit's runtime or manager is not what this
reads, counting raises, and the gate refuses uploads rather than let them in
uncounted.
"""

from __future__ import annotations

from streamlit import config
from streamlit.runtime import Runtime


class UploadAccountingError(RuntimeError):
    """The held files cannot be counted."""


class StreamlitUploads:
    """The files of Streamlit's runtime in this process, per session id."""

    @staticmethod
    def _runtime() -> Runtime:
        if not Runtime.exists():
            raise UploadAccountingError("Streamlit's runtime has not started")
        return Runtime.instance()

    def held(self) -> dict[str, int]:
        manager = self._runtime().uploaded_file_mgr
        storage = getattr(manager, "file_storage", None)  # session id -> {file id: UploadedFileRec}
        if not isinstance(storage, dict):
            raise UploadAccountingError(f"Streamlit's upload manager {type(manager).__name__} has no file_storage")
        # dict() and list() copy in one step under the GIL: a script thread may remove a file meanwhile.
        return {session: sum(len(record.data) for record in list(files.values()))
                for session, files in dict(storage).items()}

    def active(self, session_id: str) -> bool:
        return self._runtime().is_active_session(session_id)

    def drop(self, session_id: str) -> None:
        self._runtime().uploaded_file_mgr.remove_session_files(session_id)

    def reconnect_s(self) -> float:
        return float(config.get_option("server.disconnectedSessionTTL"))
