import sys

from gbmseg.cli import main

sys.exit(main())
