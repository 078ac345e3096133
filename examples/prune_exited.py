#!/usr/bin/env python3
"""An admin script over the CLI (with `sh`): remove the exited containers whose exit code was 0,
keep the failed ones for a post-mortem, and report both.

    LXCBOX_ROOT=/tmp/myroot python examples/prune_exited.py
"""
import sh


def main():
    lxcbox = sh.Command("lxcbox")
    exited = lxcbox("ps", "-a", "-q", "--no-trunc", "--filter", "status=exited").split()
    clean = set(lxcbox("ps", "-a", "-q", "--no-trunc", "--filter", "exited=0").split())
    for cid in exited:
        if cid in clean:
            lxcbox("rm", cid)
            print("removed %s" % cid[:12])
        else:
            code = lxcbox("inspect", "-f", "{{.State.ExitCode}}", cid).strip()
            print("kept %s (exit %s)" % (cid[:12], code))


if __name__ == "__main__":
    main()
