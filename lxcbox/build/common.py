"""What the builder's step modules share."""
import os


def env_of(config):
    return dict(e.partition("=")[::2] for e in config.get("env") or [])


def is_dir_fd(fd):
    import stat

    return stat.S_ISDIR(os.fstat(fd).st_mode)
