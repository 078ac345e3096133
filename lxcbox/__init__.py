"""lxcbox: a small container engine over LXC, after dotCloud's 2013 Docker.

    import lxcbox
    client = lxcbox.from_env()

Names are loaded on first use (PEP 562), so that `lxcbox run` imports only what it needs.
"""
__version__ = "0.1.0"

_EXPORTS = {
    "Client": "client", "from_env": "client",
    "LxcboxError": "errors", "NotFound": "errors", "ImageNotFound": "errors", "Conflict": "errors",
    "StateError": "errors", "InvalidArgument": "errors", "ContainerError": "errors",
    "CommandNotFound": "errors", "CommandNotExecutable": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module 'lxcbox' has no attribute %r" % name)
    import importlib

    return getattr(importlib.import_module("." + module, __name__), name)


def __dir__():
    return __all__
