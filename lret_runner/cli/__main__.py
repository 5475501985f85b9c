import sys

from lret_runner.cli import main

sys.exit(main())
