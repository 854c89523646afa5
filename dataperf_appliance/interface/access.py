"""The password of the Streamlit app.

The password is ``$APPLIANCE_UI_PASSWORD`` when that is set. Otherwise one is
generated at first start and kept in ``$APPLIANCE_DATA_DIR/secrets/ui-password``
(folder 0700, file 0600: only the operator, the owner of the process, reads
it). The app never shows it; an operator reads the file::

    cat "$(python -m dataperf_appliance.interface.access)"

``python -m dataperf_appliance.interface.access`` (the image's entrypoint calls it before
the app starts) makes sure the file exists and prints its path, never the
password. With ``APPLIANCE_UI_PASSWORD`` set it writes nothing and prints
nothing on stdout (a note goes to stderr).

Passwords are compared in constant time (`hmac.compare_digest`). An operator-set
password shorter than `MIN_PASSWORD_CHARS` is refused: the app does not start
with it (the generated one has about 26 random characters).
"""

from __future__ import annotations

import hmac
import os
import secrets
import sys
from pathlib import Path

from dataperf_appliance.engine.settings import Settings, load_settings

PASSWORD_ENV = "APPLIANCE_UI_PASSWORD"
SECRETS_DIR = "secrets"
PASSWORD_FILE = "ui-password"
#: Bytes of randomness of a generated password (about 26 URL-safe characters).
GENERATED_BYTES = 20
#: The shortest password an operator may set: with the login backoff (login_gate.py), guessing one of 12
#: characters is out of reach.
MIN_PASSWORD_CHARS = 12


class PasswordUnavailable(RuntimeError):
    """No password is configured and none can be read or generated (the data root is not writable)."""


def password_file(settings: Settings | None = None) -> Path:
    """Where a generated password is kept: ``<data root>/secrets/ui-password``."""
    settings = settings or load_settings()
    return settings.data_dir / SECRETS_DIR / PASSWORD_FILE


def _configured(environ: dict[str, str] | None = None) -> str | None:
    """The operator's password, if set; PasswordUnavailable if it is too short to be set."""
    env = os.environ if environ is None else environ
    password = env.get(PASSWORD_ENV) or None
    if password is not None and len(password) < MIN_PASSWORD_CHARS:
        raise PasswordUnavailable(f"{PASSWORD_ENV} has {len(password)} characters; a password has at least "
                                  f"{MIN_PASSWORD_CHARS} (or unset it, and one is generated)")
    return password


def ensure_password_file(settings: Settings | None = None) -> Path:
    """The password file, generated first if it does not exist (folder 0700, file 0600); its path.

    Safe when two processes start at once: the file is created exclusively and
    whole (written under a temporary name, then linked into place), so a
    reader never sees an empty or half-written password. The folder's and the
    file's modes are enforced also when they exist already.
    """
    path = password_file(settings)
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not path.exists():
        tmp = folder / f".{PASSWORD_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(GENERATED_BYTES) + "\n")
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the link makes it the password
            try:
                os.link(tmp, path)  # fails if another process created it meanwhile: theirs is kept
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    os.chmod(path, 0o600)
    return path


def expected_password(settings: Settings | None = None, environ: dict[str, str] | None = None) -> str:
    """The password the app asks for: ``$APPLIANCE_UI_PASSWORD``, else the generated one (made if missing)."""
    configured = _configured(environ)
    if configured:
        return configured
    try:
        text = ensure_password_file(settings).read_text().strip()
    except OSError as error:
        raise PasswordUnavailable(f"{PASSWORD_ENV} is unset and the password file cannot be made or read: "
                                  f"{error}") from error
    if not text:
        raise PasswordUnavailable(f"the password file {password_file(settings)} is empty: delete it and restart")
    return text


def check_password(given: str, settings: Settings | None = None, environ: dict[str, str] | None = None) -> bool:
    """True when `given` is the app's password (constant-time comparison)."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), expected_password(settings, environ).encode())


def main(argv: list[str] | None = None) -> int:
    """Make sure a password exists; print the password file's path (never the password)."""
    try:
        configured = _configured()
    except PasswordUnavailable as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    if configured:
        print(f"the app's password is {PASSWORD_ENV}'s: no password file is needed", file=sys.stderr)
        return 0
    try:
        path = ensure_password_file()
    except OSError as error:
        print(f"cannot make the app's password file: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
