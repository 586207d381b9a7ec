"""Drop-in replacement for the old bot's ``messangers`` module, backed by protowatch.

Measurement scripts written for the old Python bot keep working unchanged::

    from bot import messangers
    messangers.send_message("sample 3 done")

``send_message`` runs ``protowatch send-message -`` and hands it the text on standard
input, encoded as UTF-8, so any text of any length (several lines, Cyrillic, symbols)
arrives as written, with no shell quoting involved. While a protowatch agent runs with
the same config, the message goes through it (alerts, throttling, the durable outbox);
otherwise protowatch sends it directly. Either way the call returns once the message was
delivered, or queued by the agent, which keeps trying: do not send it again.

A message that could not be delivered raises ``MessengerError``; so does a protowatch
that cannot be found or does not finish in time. Nothing is printed on success.

Environment variables:

``PROTOWATCH_BIN``
    The protowatch binary to run: a full path, or a name looked up on ``PATH``.
    Unset: ``protowatch`` (on Windows ``protowatch.exe``) on ``PATH``, and on Windows
    then ``%ProgramFiles%\\protowatch\\protowatch.exe``, where the installer puts it.
``PROTOWATCH_CONFIG``
    The config file, passed as ``--config``. Unset: protowatch's own default
    (``config.json`` in the current folder).
``PROTOWATCH_TIMEOUT``
    Seconds to wait for protowatch before giving up with ``MessengerError`` [120].

Python 3.8 or newer, standard library only.
"""

import logging
import os
import shutil
import subprocess

__all__ = ["MessengerError", "send_message"]

DEFAULT_TIMEOUT = 120.0
"""Seconds to wait for protowatch when ``PROTOWATCH_TIMEOUT`` is not set."""

# protowatch's own wait for a running agent's outcome (`send-message --wait`); with a
# shorter timeout the shim asks for a shorter wait, so that protowatch answers in time.
_AGENT_WAIT = 30

_log = logging.getLogger(__name__)


class MessengerError(Exception):
    """The message was not sent, or protowatch could not say that it was.

    ``returncode`` (also ``exit_code``) is protowatch's exit code: 1 the message was
    refused or a destination could not be reached, 2 bad usage or a bad config; ``None``
    when protowatch did not run or did not finish. ``stderr`` is what protowatch wrote
    to its standard error (its explanation), or ``""``.
    """

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr

    @property
    def exit_code(self):
        return self.returncode


def send_message(text, *, event=None, severity=None, attachments=None, tags=None, timeout=None):
    """Send ``text`` to every destination of its event (by default ``message``).

    Keyword arguments, all optional, map onto ``protowatch send-message``:

    ``event``
        The event name for routing (``--event``) [``message``].
    ``severity``
        ``info``, ``warning``, ``minor``, ``major``, or ``INFO``, ``REPORT``,
        ``WARNING``, ``PROBLEM`` (``--severity``) [``info``].
    ``attachments``
        Paths of files to attach, at most 5 MB each (``--attach``).
    ``tags``
        Tags, shown as hashtags (``--tag``).
    ``timeout``
        Seconds to wait for protowatch [``PROTOWATCH_TIMEOUT``, else 120].

    Returns ``None``. Raises ``MessengerError`` when the message was refused, could not
    be sent, or protowatch could not be run or did not finish in time.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    if timeout is None:
        timeout = _timeout_from_env()
    else:
        timeout = _positive_seconds(timeout, "timeout")

    args = []
    config = os.environ.get("PROTOWATCH_CONFIG")
    if config:
        args.append("--config=" + config)
    args.append("send-message")
    # The `--name=value` form: a value that starts with "-" is never taken for an option.
    if event is not None:
        args.append("--event=" + str(event))
    if severity is not None:
        args.append("--severity=" + str(severity))
    for path in _as_list(attachments):
        args.append("--attach=" + os.fsdecode(os.fspath(path)))
    for tag in _as_list(tags):
        args.append("--tag=" + str(tag))
    if timeout < _AGENT_WAIT + 10:
        args.append("--wait=" + str(max(1, int(timeout * 2 / 3))))
    args.append("-")

    binary = _find_binary()
    stdout, stderr, returncode = _run([binary] + args, text.encode("utf-8", "replace"), timeout)
    if returncode != 0:
        detail = stderr.strip() or "(nothing on stderr)"
        raise MessengerError(
            "protowatch send-message failed (exit code {}): {}".format(returncode, detail),
            returncode=returncode,
            stderr=stderr,
        )
    # Notes on success ("queued, the agent keeps trying", "counted as a repeat") go to
    # the log, which is silent unless the script configures logging.
    if stderr.strip():
        _log.info("protowatch: %s", stderr.strip())


def _as_list(value):
    """A list of the given values; one string or path alone is one value, not its letters."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, os.PathLike)):
        return [value]
    return list(value)


def _positive_seconds(value, what):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise MessengerError(
            "{} must be a positive number of seconds, not {!r}".format(what, value)
        )
    return seconds


def _timeout_from_env():
    value = os.environ.get("PROTOWATCH_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_TIMEOUT
    return _positive_seconds(value, "PROTOWATCH_TIMEOUT")


def _find_binary():
    """``PROTOWATCH_BIN``, else protowatch on ``PATH``, else (Windows) its install folder."""
    configured = os.environ.get("PROTOWATCH_BIN")
    if configured:
        found = shutil.which(configured)
        if found:
            return found
        if os.path.isfile(configured):
            return configured  # not executable: running it says why
        raise MessengerError(
            "the protowatch binary PROTOWATCH_BIN={!r} was not found; set the environment "
            "variable PROTOWATCH_BIN to the full path of protowatch{}".format(
                configured, ".exe" if os.name == "nt" else ""
            )
        )
    names = ["protowatch", "protowatch.exe"] if os.name == "nt" else ["protowatch"]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.name == "nt":
        program_files = os.environ.get("ProgramFiles")
        if program_files:
            installed = os.path.join(program_files, "protowatch", "protowatch.exe")
            if os.path.isfile(installed):
                return installed
    raise MessengerError(
        "protowatch was not found on PATH; put its folder on PATH, or set the environment "
        "variable PROTOWATCH_BIN to the full path of protowatch{}".format(
            ".exe" if os.name == "nt" else ""
        )
    )


def _run(cmd, data, timeout):
    """Runs ``cmd`` with ``data`` on stdin; returns ``(stdout, stderr, returncode)`` as text."""
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        raise MessengerError(
            "cannot run protowatch ({}): {}; set the environment variable PROTOWATCH_BIN to "
            "the full path of the protowatch binary".format(cmd[0], e)
        ) from e
    with proc:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                out, err = b"", b""
            stderr = _decode(err)
            said = ": " + stderr.strip() if stderr.strip() else ""
            raise MessengerError(
                "protowatch send-message did not finish within {:g} s and was stopped; the "
                "message may or may not have been sent (PROTOWATCH_TIMEOUT sets the "
                "limit){}".format(timeout, said),
                stderr=stderr,
            ) from None
        except BaseException:
            # Ctrl-C or any other interruption: do not leave protowatch behind.
            proc.kill()
            raise
    return _decode(out), _decode(err), proc.returncode


def _decode(data):
    return (data or b"").decode("utf-8", "replace")
