"""The one exception type users see: a problem with their input, named with its fix."""


class PostBCError(Exception):
    """Bad input (file, key, option, checkpoint, env): the message says what is wrong and how to fix it.

    The CLI prints the message and exits with status 2 instead of a traceback.
    """


class NonFiniteLoss(PostBCError):
    """Training produced NaN or inf: the run stopped, its last good checkpoint is kept and resumable."""
