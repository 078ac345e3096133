#!/usr/bin/env python3
"""Run a job in a throwaway container and collect its output, as a batch system would.

    LXCBOX_ROOT=/tmp/myroot python examples/run_job.py
"""
import lxcbox


def main():
    client = lxcbox.from_env()
    client.images.pull("base")
    out = client.containers.run("base", ["sh", "-c", "s=0; for i in $(seq 1 100); do s=$((s+i)); done; echo $s"],
                                remove=True)
    print("sum of 1..100 = %s" % out.decode().strip())
    try:
        client.containers.run("base", ["sh", "-c", "echo disk full >&2; exit 3"], remove=True)
    except lxcbox.ContainerError as err:
        print("failed job: exit %d, stderr %r" % (err.exit_status, err.stderr.decode().strip()))


if __name__ == "__main__":
    main()
