"""python scripts/resume.py ...: the same as `gradtrace resume ...` (gradtrace.commands.resume)."""

import sys

from gradtrace.commands import resume

if __name__ == "__main__":
    sys.exit(resume.main(prog=sys.argv[0]))
