"""Drawing docker's progress messages (pull, push), as docker's CLI does.

On a terminal, one line per layer, redrawn in place (`abc123: Downloading [==>   ] 1.2MB/4.5MB`);
on a pipe, plain lines without the bars; quiet prints nothing.
"""
import sys


class Progress:
    def __init__(self, out=None, quiet=False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self.tty = not quiet and self.out.isatty()
        self.lines = {}  # id -> its line number, counted from the first
        self.count = 0

    def __call__(self, msg):
        if self.quiet or any(k.startswith("_") for k in msg) or "status" not in msg:
            return  # aux messages (a push's digest) carry data, not a line
        status, ident = msg.get("status", ""), msg.get("id")
        bar = msg.get("progress") or ""
        if not self.tty:
            if "current" in (msg.get("progressDetail") or {}) and status in ("Downloading", "Pushing",
                                                                                 "Extracting"):
                return
            self.out.write(("%s: %s\n" % (ident, status)) if ident else status + "\n")
            self.out.flush()
            return
        text = ("%s: %s %s" % (ident, status, bar)).rstrip() if ident else status
        if ident is None or status.startswith(("Pulling from", "The push refers")):
            self.out.write(text + "\n")
            self.count += 1
            self.lines.clear() if ident is None else None
        elif ident not in self.lines:
            self.lines[ident] = self.count
            self.out.write(text + "\n")
            self.count += 1
        else:
            up = self.count - self.lines[ident]
            # up to the layer's line, clear it, write, and back down
            self.out.write("\x1b[%dA\r\x1b[2K%s\r\x1b[%dB" % (up, text, up))
        self.out.flush()
