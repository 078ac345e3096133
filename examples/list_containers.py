#!/usr/bin/env python3
"""An admin script: list every container with its state, then clean up the one it started.

    LXCBOX_ROOT=/tmp/myroot python examples/list_containers.py
"""
import lxcbox


def main():
    client = lxcbox.from_env()
    client.images.pull("base")
    sleeper = client.containers.run("base", ["sleep", "300"], detach=True, name="example-sleeper")
    client.containers.create("base", ["true"], name="example-created")
    try:
        for c in client.containers.list(all=True):
            state = c.attrs["State"]
            print("%-14s %-18s %-8s exit=%s" % (c.short_id, c.name, state["Status"], state["ExitCode"]))
    finally:
        sleeper.remove(force=True)
        client.containers.get("example-created").remove()


if __name__ == "__main__":
    main()
