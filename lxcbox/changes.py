"""What a container changed: its upper dir read against the image's layers (`lxcbox diff`).

Docker's letters: A added, C changed, D deleted.  A directory that holds a change is C when the
image has it, A when it is new.
"""
import os

from . import archive, rootfs


def changes(upper, lowers):
    """[(kind, path)] sorted by path, for an overlay upper dir over lowers (top first)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            host = os.path.join(dirpath, name)
            path = "/" + os.path.relpath(host, upper)
            st = os.lstat(host)
            if archive.is_whiteout(st):
                out.append(("D", path))
                continue
            in_image = rootfs.lookup(lowers, path) is not None
            out.append(("C" if in_image else "A", path))
            if in_image and name in dirnames and archive.is_opaque(host):
                # an opaque directory replaced the image's: what the image had there is gone
                for lower in lowers:
                    d = lower + path
                    if os.path.isdir(d):
                        for old in sorted(os.listdir(d)):
                            if not os.path.lexists(os.path.join(host, old)):
                                out.append(("D", path + "/" + old))
                        break
    out.sort(key=lambda kv: kv[1])
    return out
