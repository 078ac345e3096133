"""The lxcbox command line: one small function per verb, each a thin layer over the API.

Errors become one line on stderr.  Exit codes follow Docker: the container's own code for
`run`, 125 for lxcbox's failures there (126 and 127 for a command that cannot run), and 1
for a failed verb elsewhere.
"""
import os
import sys

from .parse import ArityError, Opt, UsageError, parse, usage_text
from ..errors import LxcboxError
from .common import PROG, _arity, _client, _error, _global_argv, _size
from .containers import (
    _CONTAINER_OPTS, _RUN_OPTS, cmd_run, cmd_create, cmd_start, cmd_rm, cmd_stop, cmd_kill, cmd_wait,
    cmd_logs, cmd_attach, cmd_commit, cmd_diff, cmd_export, cmd_update, cmd_stats, cmd_port, cmd_pause,
    cmd_unpause, cmd_restart, cmd_rename, cmd_top, cmd_exec, cmd_ps, cmd_inspect, cmd_cp)


def _verb(module, name):
    """A verb whose module is imported only when it runs (`run` never loads the image verbs)."""
    def call(g, o, args):
        return getattr(__import__(__package__ + "." + module, fromlist=[name]), name)(g, o, args)
    return call


cmd_history = _verb("images", "cmd_history")
cmd_tag = _verb("images", "cmd_tag")
cmd_import = _verb("images", "cmd_import")
cmd_save = _verb("images", "cmd_save")
cmd_load = _verb("images", "cmd_load")
cmd_images = _verb("images", "cmd_images")
cmd_rmi = _verb("images", "cmd_rmi")
cmd_pull = _verb("images", "cmd_pull")
cmd_push = _verb("images", "cmd_push")
cmd_login = _verb("images", "cmd_login")
cmd_logout = _verb("images", "cmd_logout")
cmd_network = _verb("system", "cmd_network")
cmd_volume = _verb("system", "cmd_volume")
cmd_info = _verb("system", "cmd_info")
cmd_version = _verb("system", "cmd_version")
cmd_system = _verb("system", "cmd_system")
cmd_events = _verb("system", "cmd_events")
cmd_container_prune = _verb("system", "cmd_container_prune")
cmd_build = _verb("build", "cmd_build")
cmd_builder = _verb("build", "cmd_builder")
cmd_checkpoint = _verb("checkpoint", "cmd_checkpoint")
cmd_restore = _verb("checkpoint", "cmd_restore")


# `docker container ...`: the object group's subcommands are the verbs themselves
_CONTAINER_GROUP = {"ls": "ps", "list": "ps", "ps": "ps", "rm": "rm", "start": "start", "stop": "stop",
                    "kill": "kill", "restart": "restart", "pause": "pause", "unpause": "unpause", "logs": "logs",
                    "exec": "exec", "attach": "attach", "commit": "commit", "diff": "diff", "export": "export",
                    "port": "port", "rename": "rename", "top": "top", "update": "update", "wait": "wait",
                    "create": "create", "run": "run", "stats": "stats", "cp": "cp"}


def cmd_container(g, o, args):
    sub, rest = args[0], args[1:]
    if sub == "inspect":
        return main(_global_argv(g) + ["inspect", "--type", "container"] + rest)
    if sub == "prune":
        return cmd_container_prune(g, o, rest)
    if sub == "restore":
        return cmd_restore(g, o, rest)
    if sub in _CONTAINER_GROUP:
        return main(_global_argv(g) + [_CONTAINER_GROUP[sub]] + rest)
    raise ArityError("unknown container command: %s" % sub)


def cmd_image(g, o, args):
    sub, rest = args[0], args[1:]
    if sub in ("ls", "list"):
        return main(_global_argv(g) + ["images"] + rest)
    if sub == "rm":
        return main(_global_argv(g) + ["rmi"] + rest)
    if sub == "inspect":
        return main(_global_argv(g) + ["inspect", "--type", "image"] + rest)
    if sub in ("history", "tag", "import", "save", "load", "pull", "push"):
        return main(_global_argv(g) + [sub] + rest)
    if sub == "prune":
        po, pargs = parse(rest, [Opt("-a|--all", "flag", dest="all"), Opt("-f|--force", "flag", dest="force")])
        if not po["force"]:
            from .system import _confirm

            if not _confirm("WARNING! This will remove all %s." % ("images without at least one container "
                                                                    "associated to them" if po["all"] else
                                                                    "dangling images")):
                return 0
        result = _client(g).images.prune(all=po["all"])
        for item in result["ImagesDeleted"] or []:
            print("deleted: %s" % item["Deleted"])
        print("Total reclaimed space: %s" % _size(result["SpaceReclaimed"]))
        return 0
    raise ArityError("unknown image command: %s" % sub)


VERBS = {
    "run": (cmd_run, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image",
            _RUN_OPTS, 1, None, False),
    "create": (cmd_create, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
               _CONTAINER_OPTS, 1, None, False),
    "start": (cmd_start, "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
              [Opt("-a|--attach", "flag", "Attach STDOUT/STDERR", dest="attach"),
               Opt("-i|--interactive", "flag", "Attach container's STDIN", dest="interactive"),
               Opt("--checkpoint", "value", "Restore from this checkpoint", metavar="NAME")], 1, None, True),
    "ps": (cmd_ps, "[OPTIONS]", "List containers",
           [Opt("-a|--all", "flag", "Show all containers (default shows just running)", dest="all"),
            Opt("-q|--quiet", "flag", "Only display container IDs", dest="quiet"),
            Opt("-f|--filter", "list", "Filter output: status=, name=, id=, label=, exited=, ancestor=, before=, "
                "since=, volume=, network=, publish=, expose=, health=", dest="filter", metavar="FILTER"),
            Opt("-l|--latest", "flag", "Show the latest created container (includes all states)", dest="latest"),
            Opt("-n|--last", "value", "Show n last created containers (includes all states)", dest="last",
                metavar="N"),
            Opt("-s|--size", "flag", "Display total file sizes", dest="size"),
            Opt("--format", "value", "Go-style template ({{.ID}} {{.Names}} {{.Status}} ...) or json",
                metavar="FORMAT"),
            Opt("--no-trunc", "flag", "Don't truncate output")], 0, 0, True),
    "rm": (cmd_rm, "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
           [Opt("-f|--force", "flag", "Force the removal of a running container (uses SIGKILL)", dest="force"),
            Opt("-v|--volumes", "flag", "Remove anonymous volumes associated with the container", dest="volumes")],
           1, None, True),
    "stop": (cmd_stop, "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
             [Opt("-t|--time", "value", "Seconds to wait before killing it (default: the container's --stop-timeout, "
                  "else 10)", dest="time",
                  metavar="SECS")], 1, None, True),
    "kill": (cmd_kill, "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
             [Opt("-s|--signal", "value", "Signal to send to the container", default="KILL", dest="signal",
                  metavar="SIG")], 1, None, True),
    "wait": (cmd_wait, "CONTAINER [CONTAINER...]", "Block until containers stop, then print their exit codes",
             [], 1, None, True),
    "logs": (cmd_logs, "[OPTIONS] CONTAINER", "Fetch the logs of a container",
             [Opt("-f|--follow", "flag", "Follow log output", dest="follow"),
              Opt("-t|--timestamps", "flag", "Show timestamps", dest="timestamps"),
              Opt("--since", "value", "Show logs since a timestamp or a relative time (e.g. 10m)", metavar="T"),
              Opt("--until", "value", "Show logs before a timestamp or a relative time", metavar="T"),
              Opt("-n|--tail", "value", "Number of lines to show from the end of the logs", default="all",
                  dest="tail", metavar="N")], 1, 1, True),
    "commit": (cmd_commit, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes",
               [Opt("-a|--author", "value", "Author", dest="author", metavar="AUTHOR"),
                Opt("-m|--message", "value", "Commit message", dest="message", metavar="MSG"),
                Opt("-c|--change", "list", "Apply Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, "
                    "LABEL, EXPOSE", dest="change", metavar="CHANGE"),
                Opt("-p|--pause", "flag", "Pause the container during the commit (default true)", default=True,
                    dest="pause")], 1, 2, True),
    "diff": (cmd_diff, "CONTAINER", "Inspect changes to files or directories on a container's filesystem",
             [], 1, 1, True),
    "history": (cmd_history, "[OPTIONS] IMAGE", "Show the history of an image",
                [Opt("--no-trunc", "flag", "Don't truncate output"),
                 Opt("--format", "value", "Format output using a Go template, table or json", metavar="FORMAT"),
                 Opt("-q|--quiet", "flag", "Only show image IDs", dest="quiet")], 1, 1, True),
    "tag": (cmd_tag, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag that refers to an image", [], 2, 2, True),
    "export": (cmd_export, "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive",
               [Opt("-o|--output", "value", "Write to a file, instead of STDOUT", dest="output", metavar="FILE")],
               1, 1, True),
    "import": (cmd_import, "[OPTIONS] file|- [REPOSITORY[:TAG]]", "Import a rootfs tarball (plain, gz, xz) as an image",
               [Opt("-c|--change", "list", "Apply Dockerfile instructions to the image", dest="change",
                    metavar="CHANGE"),
                Opt("-m|--message", "value", "Commit message for the imported image", dest="message",
                    metavar="MSG")], 1, 2, True),
    "save": (cmd_save, "[OPTIONS] IMAGE [IMAGE...]", "Save images to an OCI image layout tar (podman, skopeo, docker load it)",
             [Opt("-o|--output", "value", "Write to a file, instead of STDOUT", dest="output", metavar="FILE")],
             1, None, True),
    "load": (cmd_load, "[OPTIONS]", "Load images from an OCI layout or docker-archive tar",
             [Opt("-i|--input", "value", "Read from tar archive file, instead of STDIN", dest="input",
                  metavar="FILE")], 0, 0, True),
    "image": (cmd_image, "COMMAND", "Manage images: ls, rm, prune [-a], inspect, history, tag", [], 1, None, False),
    "attach": (cmd_attach, "CONTAINER", "Attach local standard input and output to a running container",
               [], 1, 1, True),
    "update": (cmd_update, "[OPTIONS] CONTAINER [CONTAINER...]", "Update the resource limits of containers",
               [o for o in _CONTAINER_OPTS if o.dest in ("memory", "memory_swap", "memory_reservation", "cpus",
                                                         "cpu_shares", "cpuset_cpus", "pids_limit",
                                                         "restart")], 1, None, True),
    "stats": (cmd_stats, "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics",
              [Opt("--no-stream", "flag", "Disable streaming stats and only pull the first result"),
               Opt("--format", "value", "Format output using a Go template, table or json", metavar="FORMAT")],
              0, None, True),
    "cp": (cmd_cp, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       lxcbox cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
           "Copy files/folders between a container and the local filesystem",
           [Opt("-a|--archive", "flag", "Archive mode (copy all uid/gid information)", dest="archive"),
            Opt("-L|--follow-link", "flag", "Always follow symbol link in SRC_PATH", dest="follow_link")],
           2, 2, True),
    "port": (cmd_port, "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings of a container", [], 1, 2, True),
    "network": (cmd_network, "COMMAND", "Manage networks: create [--subnet CIDR] NAME, ls, inspect, rm, connect, disconnect",
                [], 1, None, False),
    "volume": (cmd_volume, "COMMAND", "Manage volumes: create [NAME], ls, inspect NAME, rm NAME, prune",
               [], 1, None, False),
    "pause": (cmd_pause, "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
              [], 1, None, True),
    "unpause": (cmd_unpause, "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
                [], 1, None, True),
    "restart": (cmd_restart, "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
                [Opt("-t|--time", "value", "Seconds to wait before killing it (default: the container's --stop-timeout, "
                  "else 10)", dest="time",
                     metavar="SECS")], 1, None, True),
    "rename": (cmd_rename, "CONTAINER NEW_NAME", "Rename a container", [], 2, 2, True),
    "top": (cmd_top, "CONTAINER [ps OPTIONS]", "Display the running processes of a container", [], 1, None, False),
    "exec": (cmd_exec, "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container",
             [Opt("-i|--interactive", "flag", "Keep STDIN open", dest="interactive"),
              Opt("-t|--tty", "flag", "Allocate a pseudo-TTY", dest="tty"),
              Opt("-d|--detach", "flag", "Detached mode", dest="detach"),
              Opt("-e|--env", "list", "Set environment variables", metavar="K=V", dest="env"),
              Opt("-w|--workdir", "value", "Working directory inside the container", metavar="DIR", dest="workdir"),
              Opt("-u|--user", "value", "Username or UID", metavar="USER", dest="user")], 2, None, False),
    "inspect": (cmd_inspect, "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on objects",
                [Opt("-f|--format", "value", "Format output using a Go-style template", dest="format",
                     metavar="TEMPLATE"),
                 Opt("--type", "value", "Only inspect objects of the given type (container, image)", dest="type",
                     metavar="TYPE")], 1, None, True),
    "images": (cmd_images, "[OPTIONS] [REPOSITORY[:TAG]]", "List images",
               [Opt("-q|--quiet", "flag", "Only show image IDs", dest="quiet"),
                Opt("-a|--all", "flag", "Show all images (default hides intermediate images)", dest="all"),
                Opt("-f|--filter", "list", "Filter output: dangling=, label=, reference=, before=, since=",
                    dest="filter", metavar="FILTER"),
                Opt("--format", "value", "Format output using a Go template, table or json", metavar="FORMAT"),
                Opt("--digests", "flag", "Show digests"),
                Opt("--no-trunc", "flag", "Don't truncate output")], 0, 1, True),
    "rmi": (cmd_rmi, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
            [Opt("-f|--force", "flag", "Force removal of the image", dest="force")], 1, None, True),
    "pull": (cmd_pull, "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry (`base`, `debian`: "
             "built offline from templates/images/)",
             [Opt("-a|--all-tags", "flag", "Download all tagged images in the repository", dest="all_tags"),
              Opt("--platform", "value", "Set platform if server is multi-platform capable (os/arch[/variant])",
                  metavar="PLATFORM"),
              Opt("-q|--quiet", "flag", "Suppress verbose output", dest="quiet")], 1, 1, True),
    "push": (cmd_push, "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
             [Opt("-a|--all-tags", "flag", "Push all tags of an image to the repository", dest="all_tags"),
              Opt("-q|--quiet", "flag", "Suppress verbose output", dest="quiet")], 1, 1, True),
    "login": (cmd_login, "[OPTIONS] [SERVER]", "Log in to a registry (credentials go to ~/.docker/config.json)",
              [Opt("-u|--username", "value", "Username", dest="username", metavar="USER"),
               Opt("-p|--password", "value", "Password", dest="password", metavar="PASSWORD"),
               Opt("--password-stdin", "flag", "Take the password from stdin", dest="password_stdin")],
              0, 1, True),
    "logout": (cmd_logout, "[SERVER]", "Log out from a registry", [], 0, 1, True),
    "info": (cmd_info, "[OPTIONS]", "Display system-wide information",
             [Opt("-f|--format", "value", "Format the output using a Go template", dest="format",
                  metavar="FORMAT")], 0, 0, True),
    "version": (cmd_version, "[OPTIONS]", "Show the lxcbox version",
                [Opt("-f|--format", "value", "Format the output using a Go template", dest="format",
                     metavar="FORMAT")], 0, 0, True),
    "container": (cmd_container, "COMMAND", "Manage containers: ls, inspect, rm, prune, restore --import FILE, and "
                  "every container verb",
                  [], 1, None, False),
    "events": (cmd_events, "[OPTIONS]", "Get real time events from lxcbox (a journal kept under the root)",
               [Opt("--since", "value", "Show all events created since timestamp", metavar="T"),
                Opt("--until", "value", "Stream events until this timestamp", metavar="T"),
                Opt("-f|--filter", "list", "Filter output: container=, image=, event=, type=, label=, network=, "
                    "volume=", dest="filter", metavar="FILTER"),
                Opt("--format", "value", "Format output using a Go template or json", metavar="FORMAT")],
               0, 0, True),
    "build": (cmd_build, "[OPTIONS] PATH|-", "Build an image from a Dockerfile",
              [Opt("-t|--tag", "list", "Name and optionally a tag in the 'name:tag' format", dest="tag",
                   metavar="NAME"),
               Opt("-f|--file", "value", "Name of the Dockerfile (default: 'PATH/Dockerfile'; - for stdin)",
                   dest="file", metavar="FILE"),
               Opt("--build-arg", "list", "Set build-time variables", dest="build_arg", metavar="K=V"),
               Opt("--target", "value", "Set the target build stage to build", metavar="STAGE"),
               Opt("--no-cache", "flag", "Do not use cache when building the image", dest="no_cache"),
               Opt("--pull", "flag", "Always attempt to pull a newer version of the image"),
               Opt("--label", "list", "Set metadata for an image", metavar="K=V"),
               Opt("--network", "value", "Networking mode for the RUN instructions during build (default bridge)",
                   metavar="MODE"),
               Opt("-q|--quiet", "flag", "Suppress the build output and print image ID on success", dest="quiet"),
               Opt("--iidfile", "value", "Write the image ID to the file", metavar="FILE"),
               Opt("--progress", "value", "Type of progress output (auto, plain, quiet)", metavar="TYPE"),
               Opt("--rm", "flag", "Remove intermediate containers after a successful build (always)", default=True),
               Opt("--force-rm", "flag", "Always remove intermediate containers (always)", dest="force_rm")],
              1, 1, True),
    "builder": (cmd_builder, "COMMAND", "Manage builds: prune [-a] [-f]", [], 1, None, False),
    "checkpoint": (cmd_checkpoint, "COMMAND", "Manage checkpoints (CRIU): create [--leave-running] [--export FILE] "
                   "CONTAINER [NAME], ls CONTAINER, rm CONTAINER NAME", [], 1, None, False),
    "system": (cmd_system, "COMMAND", "Manage lxcbox: df [-v], prune [-a] [--volumes] [-f], info", [], 1, None,
               False),
}




_GLOBAL_OPTS = [
    Opt("--root", "value", "Root of lxcbox's state (default /var/lib/lxcbox, or $LXCBOX_ROOT)", metavar="DIR"),
    Opt("-s|--storage-driver", "value", "Storage driver for new containers: overlay (default where the kernel "
        "has it) or vfs", metavar="DRIVER", dest="storage_driver"),
    Opt("--help", "flag", "Print usage"),
    Opt("-v|--version", "flag", "Print version information and quit", dest="version"),
]


def main_usage():
    lines = ["Usage:  %s [OPTIONS] COMMAND" % PROG, "", "A container engine over LXC, after the 2013 Docker.",
             "", "Options:"]
    for o in _GLOBAL_OPTS:
        lines.append("  %-28s %s" % (", ".join(o.names) + (" " + o.metavar if o.kind != "flag" else ""), o.help))
    lines += ["", "Commands:"]
    for verb, spec in VERBS.items():
        lines.append("  %-10s %s" % (verb, spec[2]))
    lines += ["", "Run '%s COMMAND --help' for more information on a command." % PROG]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verb = None
    try:
        g, rest = parse(argv, _GLOBAL_OPTS, interspersed=False)
        if g["version"]:
            return cmd_version(g, {}, [])
        if g["help"] or not rest or rest[0] == "help":
            print(main_usage())
            return 0 if (g["help"] or rest) else 1
        verb, vargs = rest[0], rest[1:]
        spec = VERBS.get(verb)
        if spec is None:
            raise ArityError("'%s' is not a %s command. See '%s --help'" % (verb, PROG, PROG))
        fn, synopsis, summary, opts, lo, hi, interspersed = spec
        if "--help" in vargs[:1] or (interspersed and "--help" in vargs):
            print(usage_text(PROG, verb, synopsis, summary, opts))
            return 0
        o, args = parse(vargs, opts, interspersed)
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise ArityError('"%s %s" requires %s. See \'%s %s --help\''
                             % (PROG, verb, _arity(lo, hi), PROG, verb))
        return fn(g, o, args)
    except LxcboxError as exc:
        _error(exc)
        if isinstance(exc, ArityError):
            return 1
        if verb in ("run", "create") or verb is None:
            return exc.exit_code if verb else 125
        if exc.exit_code in (126, 127):  # exec or start of a command that cannot run
            return exc.exit_code
        return 1 if not isinstance(exc, UsageError) else 125
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug or an unexpected OS error: still one line, no traceback
        if os.environ.get("LXCBOX_DEBUG"):
            raise
        if isinstance(exc, PermissionError) and os.geteuid() != 0:
            # as Docker's "permission denied while trying to connect to the Docker daemon socket"
            _error("permission denied: %s: lxcbox must run as root" % (exc.filename or exc.strerror))
        else:
            _error("%s: %s" % (exc.__class__.__name__, exc))
        return 125 if verb in ("run", "create") else 1
