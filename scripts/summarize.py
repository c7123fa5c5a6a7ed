"""python scripts/summarize.py ...: the same as `gradtrace summarize ...` (gradtrace.commands.summarize)."""

import sys

from gradtrace.commands import summarize

if __name__ == "__main__":
    sys.exit(summarize.main(prog=sys.argv[0]))
