"""lxcbox: a small container engine over LXC, after dotCloud's 2013 Docker."""
from .client import Client, from_env
from .errors import (CommandNotExecutable, CommandNotFound, Conflict, ContainerError, ImageNotFound,
                     InvalidArgument, LxcboxError, NotFound, StateError)

__version__ = "0.1.0"

__all__ = ["Client", "from_env", "LxcboxError", "NotFound", "ImageNotFound", "Conflict", "StateError",
           "InvalidArgument", "ContainerError", "CommandNotFound", "CommandNotExecutable", "__version__"]
