"""``python -m d2lkit.distributed``: local SGD from the command line (see :mod:`.cli`)."""

from d2lkit.distributed.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
