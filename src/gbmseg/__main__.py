import sys

from gbmseg.cli.app import main

sys.exit(main())
