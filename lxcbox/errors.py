"""One error tree for the whole API. The CLI turns each into one line and an exit code."""


class LxcboxError(Exception):
    """Base of every error lxcbox raises on purpose."""

    #: exit code the CLI uses for this error on container verbs (run, create, start)
    exit_code = 125

    def __init__(self, message=""):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class NotFound(LxcboxError):
    """No such container, image, layer or template."""


class ImageNotFound(NotFound):
    pass


class Conflict(LxcboxError):
    """The name is taken, or the object is in use."""


class StateError(LxcboxError):
    """The container is not in a state that allows the operation."""


class InvalidArgument(LxcboxError, ValueError):
    """Bad input from the caller: a malformed name, flag or value."""


class CommandNotFound(LxcboxError):
    """The container's command does not exist in the image (Docker's 127)."""

    exit_code = 127


class CommandNotExecutable(LxcboxError):
    """The container's command exists but cannot be executed (Docker's 126)."""

    exit_code = 126


class ContainerError(LxcboxError):
    """A container ran and exited non-zero (docker-py's ContainerError)."""

    def __init__(self, container, exit_status, command, image, stderr):
        self.container = container
        self.exit_status = exit_status
        self.command = command
        self.image = image
        self.stderr = stderr
        err = ": %s" % stderr.decode(errors="replace").strip() if stderr else ""
        super().__init__(
            "Command '%s' in image '%s' returned non-zero exit status %d%s"
            % (" ".join(command or []), image, exit_status, err)
        )
        self.exit_code = exit_status


class BuildError(LxcboxError):
    """A build failed: a step's command, a missing source, a bad instruction (docker-py's
    BuildError).  build_log: the messages the build gave before it failed."""

    exit_code = 1

    def __init__(self, message, build_log=None):
        super().__init__(message)
        self.msg = message
        self.build_log = build_log or []
