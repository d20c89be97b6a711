"""The one exception type a user is meant to read.

Anything that is the caller's fault (a bad flag, a missing file, a config that cannot exist)
raises `GPT2LabError` with a one-line message. The CLI prints that line and exits with code 2;
any other exception is a bug in gpt2lab and keeps its traceback.
"""


class GPT2LabError(ValueError):
    """A user-facing error whose message is a single line."""
