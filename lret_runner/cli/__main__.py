import sys

from lret_runner.cli import main

if __name__ == "__main__":  # not again in the API's spawned worker processes
    sys.exit(main())
