"""`python -m vlmrl.report <dirs> --out <dir>`: the command line (cli.main)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
