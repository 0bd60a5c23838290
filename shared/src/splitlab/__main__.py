"""``python -m splitlab ...``: the ``splitlab`` command, for scripts and notebooks that call the
interpreter they run in rather than a script on the PATH."""

from splitlab.cli import main

if __name__ == "__main__":
    main()
