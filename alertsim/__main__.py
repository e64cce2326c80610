import sys

from alertsim.cli import main

sys.exit(main())
