import sys

try:
    from grader.cli import run
except ModuleNotFoundError as missing:
    if (missing.name or "grader").partition(".")[0] == "grader":
        raise
    # A Python without the grader's dependencies (not the one `make setup` made): say which one to use.
    sys.exit(
        f"error: {missing.name!r}, which the grader needs, is not installed for {sys.executable}.\n"
        "Run `make setup` (it creates .venv), then `.venv/bin/grader ...`, or activate .venv first "
        "(`. .venv/bin/activate`; on Windows `.venv\\Scripts\\activate`)."
    )

run()
