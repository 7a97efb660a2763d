import sys

from pfnforge.cli import main

sys.exit(main())
